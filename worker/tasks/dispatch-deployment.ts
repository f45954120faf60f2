import type { Task } from "graphile-worker";
import type { Services } from "../../server/context";
import { dispatchEnvironment } from "../../server/deployments/dispatch";
import { taskCatalog } from "../../server/jobs/catalog";

/** Runs on the environment's named queue, so dispatches of one environment never overlap. */
export function dispatchDeployment(services: Services): Task {
  return async (payload, helpers) => {
    const { environmentId } = taskCatalog.dispatch_deployment.parse(payload);
    const leased = await dispatchEnvironment(services, environmentId);
    if (leased) helpers.logger.info(`leased deployment ${leased.id} (attempt ${leased.attempt}) to cluster ${leased.clusterId}`);
  };
}
