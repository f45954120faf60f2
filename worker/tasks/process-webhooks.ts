import type { Task } from "graphile-worker";
import type { Services } from "../../server/context";
import type { Logger } from "../../server/logger";
import { processPendingDeliveries } from "../../server/webhooks/process";
import { taskCatalog } from "../../server/jobs/catalog";

/**
 * Processes every pending webhook delivery, oldest first. The intake adds this job once per
 * batch under one job key on the `webhooks` queue, so runs coalesce and never overlap.
 */
export function processWebhooks(services: Services, logger: Logger): Task {
  return async (payload, helpers) => {
    taskCatalog.process_webhooks.parse(payload ?? {});
    const processed = await processPendingDeliveries(services, { logger: logger.child({ task: "process_webhooks" }) });
    if (processed > 0) helpers.logger.debug(`processed ${processed} webhook deliveries`);
  };
}
