import type { Task } from "graphile-worker";
import type { Services } from "../../server/context";
import { applySchedules as apply } from "../../server/environments/lifecycle";
import { taskCatalog } from "../../server/jobs/catalog";

/** Every minute (crontab): start and stop environments whose schedule says so. */
export function applySchedules(services: Services): Task {
  return async (payload, helpers) => {
    taskCatalog.apply_schedules.parse(payload ?? {});
    const { applied, failed } = await apply(services);
    for (const { environmentId, action } of applied) helpers.logger.info(`schedule: ${action} environment ${environmentId}`);
    for (const { environmentId, cause } of failed) {
      helpers.logger.error(`schedule: could not start or stop environment ${environmentId} (tried again next minute): ${describe(cause)}`);
    }
  };
}

function describe(cause: unknown): string {
  return cause instanceof Error ? (cause.stack ?? cause.message) : String(cause);
}
