import type { Executor } from "../db/client";
import { addJob } from "../jobs/add-job";
import { environmentQueue } from "../jobs/catalog";

/**
 * Asks the worker to dispatch the environment's next deployment: one job per environment (by
 * job key, so requests coalesce) on the environment's own queue (so its deployments run one at
 * a time). Added in the caller's transaction, beside the row that calls for it.
 */
export function requestDispatch(db: Executor, environmentId: string): Promise<void> {
  return addJob(db, "dispatch_deployment", { environmentId }, { queueName: environmentQueue(environmentId), jobKey: `dispatch:${environmentId}` });
}
