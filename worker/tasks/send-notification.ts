import type { Task } from "graphile-worker";
import type { Services } from "../../server/context";
import { taskCatalog } from "../../server/jobs/catalog";
import { sendNotification } from "../../server/notifications/send-notification";

/** Sends a notification delivery; a failed attempt throws, and graphile-worker retries it with backoff. */
export function sendNotificationTask(services: Services): Task {
  return async (payload, helpers) => {
    const { deliveryId } = taskCatalog.send_notification.parse(payload);
    const { attempts, max_attempts } = helpers.job;
    await sendNotification(services, { deliveryId, attempt: attempts, lastAttempt: attempts >= max_attempts });
  };
}
