import type { Executor } from "../db/client";
import { addJob } from "../jobs/add-job";

/**
 * Asks the worker to dispatch the environment's next deployment: one job per environment, by job
 * key, so that requests coalesce. Added in the caller's transaction, beside the row that calls
 * for it.
 *
 * No named queue: dispatchEnvironment serialises an environment's deployments itself (a row lock
 * and a check for one running). A named queue would add nothing but a hazard found by the chaos
 * test: a worker killed while it ran the job leaves the queue locked for graphile-worker's four
 * hours, and the environment's deployments wait that long. A job locked by a dead worker is not
 * a problem: the next request for its key adds a new job beside it.
 */
export function requestDispatch(db: Executor, environmentId: string): Promise<void> {
  return addJob(db, "dispatch_deployment", { environmentId }, { jobKey: `dispatch:${environmentId}` });
}
