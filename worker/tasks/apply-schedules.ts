import type { Task } from "graphile-worker";
import type { Services } from "../../server/context";
import { applySchedules as apply } from "../../server/environments/lifecycle";
import { taskCatalog } from "../../server/jobs/catalog";

/** Every minute (crontab): start and stop environments whose schedule says so. */
export function applySchedules(services: Services): Task {
  return async (payload, helpers) => {
    taskCatalog.apply_schedules.parse(payload ?? {});
    for (const { environmentId, action } of await apply(services)) helpers.logger.info(`schedule: ${action} environment ${environmentId}`);
  };
}
