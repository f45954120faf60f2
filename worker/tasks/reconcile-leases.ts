import type { Task } from "graphile-worker";
import type { Services } from "../../server/context";
import { reconcileLeases as reconcile } from "../../server/deployments/dispatch";
import { taskCatalog } from "../../server/jobs/catalog";

export const RECONCILE_JOB_KEY = "reconcile_leases";

/**
 * Checks leases every few seconds. graphile-worker's crontab has minute granularity, too coarse
 * for leases of tens of seconds, so the task schedules its own next run (one job, by job key).
 */
export function reconcileLeases(services: Services, intervalMs: number): Task {
  return async (payload, helpers) => {
    taskCatalog.reconcile_leases.parse(payload);
    try {
      for (const { deploymentId, outcome } of await reconcile(services)) helpers.logger.warn(`deployment ${deploymentId}: lease expired, ${outcome}`);
    } finally {
      await helpers.addJob("reconcile_leases", {}, { jobKey: RECONCILE_JOB_KEY, runAt: new Date(Date.now() + intervalMs), maxAttempts: 1 });
    }
  };
}
