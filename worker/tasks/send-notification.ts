import type { Task } from "graphile-worker";
import type { Services } from "../../server/context";
import { taskCatalog } from "../../server/jobs/catalog";
import { reportEngineIfStillAway } from "../../server/notifications/engine-events";
import { sendNotification } from "../../server/notifications/send-notification";

/** Sends a notification delivery; a failed attempt throws, and graphile-worker retries it with backoff. */
export function sendNotificationTask(services: Services): Task {
  return async (payload, helpers) => {
    const { deliveryId } = taskCatalog.send_notification.parse(payload);
    const { attempts, max_attempts } = helpers.job;
    await sendNotification(services, { deliveryId, attempt: attempts, lastAttempt: attempts >= max_attempts });
  };
}

/** A grace period after an engine disconnected: engine.disconnected for its organization's rules, unless it came back. */
export function notifyEngineDisconnectedTask(services: Services): Task {
  return async (payload) => {
    await reportEngineIfStillAway(services, taskCatalog.notify_engine_disconnected.parse(payload));
  };
}
