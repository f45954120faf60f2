import type { Task } from "graphile-worker";
import type { Services } from "../../server/context";
import { reapExpiredEnvironments } from "../../server/environments/lifecycle";
import { taskCatalog } from "../../server/jobs/catalog";

/** Every minute (crontab): delete expired, unprotected environments through DELETE deployments. */
export function reapEnvironments(services: Services): Task {
  return async (payload, helpers) => {
    const { dryRun } = taskCatalog.reap_environments.parse(payload ?? {});
    const outcome = await reapExpiredEnvironments(services, { dryRun });
    for (const env of outcome.environments) helpers.logger.info(`${dryRun ? "would delete" : "deleting"} expired environment ${env.project}/${env.name}`);
    for (const env of outcome.failed) {
      helpers.logger.error(`could not delete expired environment ${env.project}/${env.name} (tried again next minute): ${describe(env.cause)}`);
    }
    for (const leftover of outcome.leftovers) {
      helpers.logger.info(
        `${dryRun ? "would remove" : "removing"} ${leftover.bytes} bytes of deleted service ${leftover.serviceId} on cluster ${leftover.cluster}`,
      );
    }
  };
}

function describe(cause: unknown): string {
  return cause instanceof Error ? (cause.stack ?? cause.message) : String(cause);
}
