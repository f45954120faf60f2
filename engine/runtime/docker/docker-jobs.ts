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
import { describeError } from "./docker-host";
import { pruneImages, repositoryOf } from "./images";
import { type DockerLayout, LABELS } from "./state";
import { demultiplex, lineSplitter } from "./streams";

/** How a docker JOB's runs start: its image (built from its Dockerfile) and its command, with the variables of its deployment. */
export const containerJobLaunch = z.object({
  image: z.string(),
  /** A shell command, as on the local runtime (engine/runtime/build-plan.ts). */
  command: z.string(),
  env: z.record(z.string(), z.string()),
  secretKeys: z.array(z.string()),
});
export type ContainerJobLaunch = z.infer<typeof containerJobLaunch>;

/** Where a run's directory is mounted in its container: the job writes its outputs there. */
const RUN_MOUNT = "/slipway/run";

/**
 * How the docker runtime runs its JOB services (ScheduledJobs does the rest, with the same
 * timeout, retries and outputs as on `local`): each attempt is a one-off container of the job's
 * image, run to completion and removed; its run directory is mounted for the outputs file.
 */
export function dockerJobRunner(options: {
  docker: Docker;
  paths: DockerLayout;
  keepImages: number;
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
        runContainer(docker, { serviceId, releaseId, launch, ...run }),
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
  run: Parameters<Attempt>[0] & { serviceId: string; releaseId: string; launch: ContainerJobLaunch },
): Promise<AttemptResult> {
  const runDir = path.dirname(run.outputFile);
  await fsp.mkdir(runDir, { recursive: true });
  // The image's user need not be root: anyone in the container may write the outputs.
  await fsp.chmod(runDir, 0o777);
  const env = { ...run.launch.env, ...run.env, SLIPWAY_OUTPUT_FILE: `${RUN_MOUNT}/${path.basename(run.outputFile)}` };
  let container: Docker.Container;
  try {
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
      HostConfig: { Binds: [`${runDir}:${RUN_MOUNT}`] },
    });
  } catch (error) {
    run.onLine("stderr", `could not create a container from ${run.launch.image}: ${describeError(error)}`);
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
    // The log stream ends once the stopped container's last lines are out.
    await Promise.race([logs, sleep(2_000)]);
    return ended(exit.StatusCode ?? null);
  } catch (error) {
    run.onLine("stderr", `the run's container failed: ${describeError(error)}`);
    return ended(null);
  } finally {
    deadline.dispose();
    await container.remove({ force: true }).catch(() => undefined);
  }
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
