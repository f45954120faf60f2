import type { Task } from "graphile-worker";
import type { Services } from "../../server/context";
import { dispatchEnvironment } from "../../server/deployments/dispatch";
import { taskCatalog } from "../../server/jobs/catalog";

/**
 * The environment's dispatch job (server/deployments/dispatch-job.ts): for an end that could not
 * lease the next deployment itself, and the stale-queue sweep. No named queue: dispatchEnvironment
 * serialises an environment's dispatches under its row lock.
 */
export function dispatchDeployment(services: Services): Task {
  return async (payload, helpers) => {
    const { environmentId } = taskCatalog.dispatch_deployment.parse(payload);
    const leased = await dispatchEnvironment(services, environmentId);
    if (leased) helpers.logger.info(`leased deployment ${leased.id} (attempt ${leased.attempt}) to cluster ${leased.clusterId}`);
  };
}
