import fsp from "node:fs/promises";
import path from "node:path";
import type { Attempt } from "../job-runs";
import type { JobRunner } from "../scheduled-jobs";
import { runCommand } from "../shared/commands";
import type { LaunchSpec, Layout } from "./layout";
import type { ReleaseProcesses } from "./release-processes";
import type { ServiceSandboxes } from "./sandbox/service-sandboxes";

/**
 * How the local runtime runs its JOB services (ScheduledJobs does the rest): each attempt is the
 * release's launch (launch.json, built as an application's) run to completion in its own process
 * group; outputs go to a file in the release's directory.
 */
export function localJobRunner(paths: Layout, processes: ReleaseProcesses, sandboxes: ServiceSandboxes): JobRunner<LaunchSpec> {
  return {
    jobFile: (serviceId) => paths.jobFile(serviceId),
    launchOf: (serviceId, releaseId) => processes.readLaunch(serviceId, releaseId),
    // A directory of their own, which the job's user may write: the release's directory is the engine's.
    outputFile: (serviceId, releaseId, runId) => path.join(paths.releaseDir(serviceId, releaseId), "outputs", `${runId}.json`),
    attempt:
      (_serviceId, _releaseId, launch): Attempt =>
      async ({ env, outputFile, timeoutMs, signal, onLine }) => {
        const outputsDir = path.dirname(outputFile);
        await fsp.mkdir(outputsDir, { recursive: true, mode: 0o700 });
        const user = launch.sandbox?.user;
        if (user) await fsp.chown(outputsDir, user.uid, user.gid);
        return runCommand({
          argv: sandboxes.wrap(launch.sandbox && { ...launch.sandbox, writable: [...launch.sandbox.writable, outputsDir] }, launch.argv, {
            cwd: launch.cwd,
            outlivesEngine: false,
          }),
          cwd: launch.cwd,
          env: { ...launch.env, ...env, SLIPWAY_OUTPUT_FILE: outputFile },
          timeoutMs,
          signal,
          onLine,
        });
      },
    // Keep the old release's logs and outputs, drop its checkout (node_modules and venvs are large).
    retire: (serviceId, releaseId) => fsp.rm(path.join(paths.releaseDir(serviceId, releaseId), "src"), { recursive: true, force: true }),
  };
}
