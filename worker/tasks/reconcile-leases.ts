import type { Task } from "graphile-worker";
import type { Services } from "../../server/context";
import { reconcileLeases as reconcile, redispatchStaleQueues } from "../../server/deployments/dispatch";
import { taskCatalog } from "../../server/jobs/catalog";
import { unlockDeadWorkers } from "../../server/jobs/worker-locks";

export const RECONCILE_JOB_KEY = "reconcile_leases";

/**
 * Checks leases, the locks of dead workers and queues left waiting, every few seconds. graphile-worker's crontab has minute
 * granularity, too coarse for leases of tens of seconds, so the task schedules its own next run
 * (one job, by job key). A run that fails to schedule the next (the database down at that
 * moment) would end the chain: the crontab starts it again every minute.
 */
export function reconcileLeases(services: Services, intervalMs: number): Task {
  return async (payload, helpers) => {
    taskCatalog.reconcile_leases.parse(payload);
    try {
      for (const { deploymentId, outcome } of await reconcile(services)) helpers.logger.warn(`deployment ${deploymentId}: lease expired, ${outcome}`);
      for (const workerId of await unlockDeadWorkers(services.db)) helpers.logger.warn(`worker ${workerId} died holding jobs or queues; unlocked them`);
      for (const environmentId of await redispatchStaleQueues(services))
        helpers.logger.warn(`environment ${environmentId}: a queued deployment waited with nothing before it; dispatching it again`);
    } finally {
      await helpers.addJob("reconcile_leases", {}, { jobKey: RECONCILE_JOB_KEY, runAt: new Date(Date.now() + intervalMs), maxAttempts: 1 });
    }
  };
}
