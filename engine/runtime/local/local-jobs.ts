import fsp from "node:fs/promises";
import path from "node:path";
import type { Attempt } from "../job-runs";
import type { JobRunner } from "../scheduled-jobs";
import { runCommand } from "../shared/commands";
import type { LaunchSpec, Layout } from "./layout";
import type { ReleaseProcesses } from "./release-processes";

/**
 * How the local runtime runs its JOB services (ScheduledJobs does the rest): each attempt is the
 * release's launch (launch.json, built as an application's) run to completion in its own process
 * group; outputs go to a file in the release's directory.
 */
export function localJobRunner(paths: Layout, processes: ReleaseProcesses): JobRunner<LaunchSpec> {
  return {
    jobFile: (serviceId) => paths.jobFile(serviceId),
    launchOf: (serviceId, releaseId) => processes.readLaunch(serviceId, releaseId),
    outputFile: (serviceId, releaseId, runId) => path.join(paths.releaseDir(serviceId, releaseId), `outputs-${runId}.json`),
    attempt:
      (_serviceId, _releaseId, launch): Attempt =>
      ({ env, outputFile, timeoutMs, signal, onLine }) =>
        runCommand({ argv: launch.argv, cwd: launch.cwd, env: { ...launch.env, ...env, SLIPWAY_OUTPUT_FILE: outputFile }, timeoutMs, signal, onLine }),
    // Keep the old release's logs and outputs, drop its checkout (node_modules and venvs are large).
    retire: (serviceId, releaseId) => fsp.rm(path.join(paths.releaseDir(serviceId, releaseId), "src"), { recursive: true, force: true }),
  };
}
