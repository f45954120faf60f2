import { Logger as WorkerLogger, run, type Runner } from "graphile-worker";
import type { Services } from "../server/context";
import type { Logger } from "../server/logger";
import { dispatchDeployment } from "./tasks/dispatch-deployment";
import { RECONCILE_JOB_KEY, reconcileLeases } from "./tasks/reconcile-leases";
import type { TaskName } from "./catalog";

export type WorkerOptions = { services: Services; connectionString: string; logger: Logger; reconcileIntervalMs?: number; concurrency?: number };

/**
 * The worker process's graphile-worker runner. graphile-worker 0.16.6 is the last release that
 * declares support for Node 20, the runtime Slipway targets; its task and job-key API is the
 * one used here.
 */
export async function startWorker(options: WorkerOptions): Promise<Runner> {
  const { services, logger } = options;
  const reconcileIntervalMs = options.reconcileIntervalMs ?? 5000;
  const taskList: Record<TaskName, ReturnType<typeof dispatchDeployment>> = {
    dispatch_deployment: dispatchDeployment(services),
    reconcile_leases: reconcileLeases(services, reconcileIntervalMs),
  };
  const runner = await run({
    connectionString: options.connectionString,
    concurrency: options.concurrency ?? 8,
    noHandleSignals: true,
    pollInterval: 1000,
    taskList,
    logger: new WorkerLogger((scope) => (level, message, meta) => {
      const child = logger.child({ ...scope, ...meta });
      if (level === "error") child.error(message);
      else if (level === "warning") child.warn(message);
      else if (level === "info") child.info(message);
      else child.debug(message);
    }),
  });
  await runner.addJob("reconcile_leases", {}, { jobKey: RECONCILE_JOB_KEY, maxAttempts: 1 });
  return runner;
}
