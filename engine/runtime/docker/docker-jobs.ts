import fsp from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import type Docker from "dockerode";
import { z } from "zod";
import type { Attempt, AttemptResult } from "../job-runs";
import type { JobRunner } from "../scheduled-jobs";
import { readJson, writeJsonAtomic } from "../shared/files";
import { killSwitch } from "../shared/kill-switch";
import { describeError, statusCodeOf } from "./docker-host";
import { containerUser, hardenedHostConfig } from "./hardening";
import { boundedLogConfig } from "./log-bound";
import { pruneImages, repositoryOf } from "./images";
import { type DockerLayout, LABELS } from "./state";
import { demultiplex, LAST_LINES_WAIT_MS, lineSplitter } from "./streams";
import { directoryTar, firstFileOf } from "./tar";

/** How a docker JOB's runs start: its image (built from its Dockerfile) and its command, with the variables of its deployment. */
export const containerJobLaunch = z.object({
  image: z.string(),
  /** A shell command, as on the local runtime (engine/runtime/build-plan.ts). */
  command: z.string(),
  env: z.record(z.string(), z.string()),
  secretKeys: z.array(z.string()),
});
export type ContainerJobLaunch = z.infer<typeof containerJobLaunch>;

/** Where a run writes its outputs in its container: a directory put there before it starts, any user may write in it. */
const RUN_DIR = "/slipway/run";
/** More than any job's variables need; a larger outputs file is refused rather than read. */
const MAX_OUTPUTS_BYTES = 1024 * 1024;

/**
 * How the docker runtime runs its JOB services (ScheduledJobs does the rest, with the same
 * timeout, retries and outputs as on `local`): each attempt is a one-off container of the job's
 * image, hardened like every container (hardening.ts), run to completion and removed. Nothing
 * of the host is mounted: the outputs file is copied out of the stopped container.
 */
export function dockerJobRunner(options: {
  docker: Docker;
  paths: DockerLayout;
  keepImages: number;
  /** The bound of each run's container log (log-bound.ts). */
  logKeepBytes: number;
  onPruneError: (image: string, error: unknown) => void;
}): JobRunner<ContainerJobLaunch> {
  const { docker, paths } = options;
  const launchFile = (serviceId: string, releaseId: string) => path.join(paths.jobReleaseDir(serviceId, releaseId), "launch.json");
  const launchOf = (serviceId: string, releaseId: string) => readJson(launchFile(serviceId, releaseId), containerJobLaunch);
  return {
    jobFile: (serviceId) => paths.jobFile(serviceId),
    launchOf,
    outputFile: (serviceId, releaseId, runId) => path.join(paths.jobReleaseDir(serviceId, releaseId), "runs", runId, "outputs.json"),
    attempt:
      (serviceId, releaseId, launch): Attempt =>
      (run) =>
        runContainer(docker, { serviceId, releaseId, launch, logKeepBytes: options.logKeepBytes, ...run }),
    async retire(serviceId, releaseId, currentReleaseId) {
      const live = (await launchOf(serviceId, currentReleaseId).catch(() => null))?.image;
      await fsp.rm(paths.jobReleaseDir(serviceId, releaseId), { recursive: true, force: true });
      if (live) await pruneImages({ docker, repository: repositoryOf(live), live, keep: options.keepImages, onError: options.onPruneError });
    },
  };
}

/** 0600: the launch file holds the job's environment, secrets included, for its scheduled runs. */
export function writeJobLaunch(paths: DockerLayout, serviceId: string, releaseId: string, launch: ContainerJobLaunch): Promise<void> {
  return writeJsonAtomic(path.join(paths.jobReleaseDir(serviceId, releaseId), "launch.json"), launch, 0o600);
}

async function runContainer(
  docker: Docker,
  run: Parameters<Attempt>[0] & { serviceId: string; releaseId: string; launch: ContainerJobLaunch; logKeepBytes: number },
): Promise<AttemptResult> {
  await fsp.mkdir(path.dirname(run.outputFile), { recursive: true });
  const inContainer = `${RUN_DIR}/${path.basename(run.outputFile)}`;
  const env = { ...run.launch.env, ...run.env, SLIPWAY_OUTPUT_FILE: inContainer };
  let container: Docker.Container;
  try {
    const user = await containerUser(docker, run.launch.image, undefined);
    container = await docker.createContainer({
      Image: run.launch.image,
      // The command replaces the image's entrypoint and command: the job runs what its service says.
      Entrypoint: ["/bin/sh", "-c"],
      Cmd: [run.launch.command],
      Env: Object.entries(env).map(([key, value]) => `${key}=${value}`),
      Labels: {
        [LABELS.managed]: "1",
        [LABELS.serviceId]: run.serviceId,
        [LABELS.releaseId]: run.releaseId,
        [LABELS.secretKeys]: run.launch.secretKeys.join(","),
      },
      HostConfig: { ...hardenedHostConfig({ user }), LogConfig: boundedLogConfig(run.logKeepBytes) },
    });
  } catch (error) {
    run.onLine("stderr", `could not create a container from ${run.launch.image}: ${describeError(error)}`);
    return { code: 127, signal: null, timedOut: false, aborted: false };
  }
  try {
    // The image's user need not be root: anyone in the container may write the outputs (sticky, as /tmp).
    await container.putArchive(directoryTar(RUN_DIR.slice(1), 0o1777), { path: "/" });
  } catch (error) {
    run.onLine("stderr", `could not prepare the run's container (${RUN_DIR}): ${describeError(error)}`);
    await container.remove({ force: true }).catch(() => undefined);
    return { code: 127, signal: null, timedOut: false, aborted: false };
  }
  // As a local run's process group is: killed outright, the run is over.
  const deadline = killSwitch({ timeoutMs: run.timeoutMs, signal: run.signal, kill: () => void container.kill().catch(() => undefined) });
  const ended = (code: number | null): AttemptResult => ({ code, signal: null, timedOut: deadline.timedOut, aborted: deadline.aborted });
  try {
    if (deadline.aborted) return ended(null);
    await container.start();
    const logs = followOutput(container, run.onLine);
    const exit = (await container.wait()) as { StatusCode?: number };
    // The log stream ends once the stopped container's last lines are out: the run ends after
    // them, so its step never reports done before its output. Bounded, for a daemon whose stream
    // never ends; 2 s was not enough for a busy Podman (the run's lines came after its step).
    await Promise.race([logs, sleep(LAST_LINES_WAIT_MS)]);
    await copyOutputs(container, inContainer, run.outputFile, run.onLine);
    return ended(exit.StatusCode ?? null);
  } catch (error) {
    run.onLine("stderr", `the run's container failed: ${describeError(error)}`);
    return ended(null);
  } finally {
    deadline.dispose();
    await container.remove({ force: true }).catch(() => undefined);
  }
}

/** The run's outputs file, from the stopped container to the engine's host, where the run's outcome reads it; none written, none copied. */
async function copyOutputs(container: Docker.Container, from: string, to: string, onLine: (fd: "stdout" | "stderr", line: string) => void) {
  let archive: Readable;
  try {
    archive = (await container.getArchive({ path: from })) as unknown as Readable;
  } catch (error) {
    if (statusCodeOf(error) !== 404) onLine("stderr", `could not read the outputs file ($SLIPWAY_OUTPUT_FILE): ${describeError(error)}`);
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of archive) {
    size += (chunk as Buffer).length;
    // The tar around the file adds a few blocks; beyond that the file is too large anyway.
    if (size > MAX_OUTPUTS_BYTES + 64 * 1024) {
      archive.destroy();
      onLine("stderr", `the outputs file ($SLIPWAY_OUTPUT_FILE) is larger than ${MAX_OUTPUTS_BYTES} bytes: not read`);
      return;
    }
    chunks.push(chunk as Buffer);
  }
  let content: Buffer | null;
  try {
    content = firstFileOf(Buffer.concat(chunks), MAX_OUTPUTS_BYTES);
  } catch (error) {
    onLine("stderr", `the outputs file ($SLIPWAY_OUTPUT_FILE) could not be read: ${(error as Error).message}`);
    return;
  }
  if (content) await fsp.writeFile(to, content, { mode: 0o600 });
}

/** The container's output from its first line, in lines, until it stops. */
async function followOutput(container: Docker.Container, onLine: (fd: "stdout" | "stderr", line: string) => void): Promise<void> {
  const stream = (await container.logs({ follow: true, stdout: true, stderr: true })) as unknown as Readable;
  const lines = lineSplitter(onLine);
  demultiplex(stream, (fd, payload) => lines.push(fd, payload));
  await new Promise<void>((resolve) => {
    stream.once("end", resolve);
    stream.once("close", resolve);
    stream.once("error", () => resolve());
  });
  lines.flush();
}
