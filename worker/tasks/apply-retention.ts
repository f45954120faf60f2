import type { Task } from "graphile-worker";
import type { Services } from "../../server/context";
import { taskCatalog } from "../../server/jobs/catalog";
import { applyRetention, type RetentionPolicy } from "../../server/retention/retention";

/** Hourly (crontab): delete, in batches, what the retention policy no longer keeps, and say what went. */
export function applyRetentionTask(services: Services, policy: RetentionPolicy): Task {
  return async (payload, helpers) => {
    taskCatalog.apply_retention.parse(payload ?? {});
    const outcome = await applyRetention(services.db, policy, services.now());
    const deleted = Object.entries(outcome).filter(([, swept]) => swept.deleted > 0);
    if (deleted.length === 0) return;
    helpers.logger.info(`retention deleted ${deleted.map(([thing, swept]) => `${swept.deleted} ${thing} (${swept.statements} statements)`).join(", ")}`);
  };
}
