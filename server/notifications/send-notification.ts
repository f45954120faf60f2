import { eq, sql } from "drizzle-orm";
import type { Services } from "../context";
import { notificationAttempts, notificationDeliveries, notificationRules } from "../db/schema";
import { sendToChannel, type DeliveryPayload } from "./channels";
import { TEST_EVENT } from "./enqueue";
import { ruleConfig } from "./rules";

/** Thrown so that graphile-worker schedules the next attempt with its backoff. */
export class DeliveryAttemptFailed extends Error {}

/**
 * One attempt of a delivery: sent, logged (status, excerpt, duration or error), and the delivery
 * marked DELIVERED, or FAILED on the last attempt. A delivery already settled, or whose rule was
 * removed or disabled meanwhile, is not sent again.
 */
export async function sendNotification(services: Services, input: { deliveryId: string; attempt: number; lastAttempt: boolean }): Promise<void> {
  const [found] = await services.db
    .select({ delivery: notificationDeliveries, rule: notificationRules })
    .from(notificationDeliveries)
    .innerJoin(notificationRules, eq(notificationRules.id, notificationDeliveries.ruleId))
    .where(eq(notificationDeliveries.id, input.deliveryId));
  if (!found || found.delivery.status !== "PENDING") return;
  if (!found.rule.enabled && found.delivery.event !== TEST_EVENT) return;
  const config = await ruleConfig(services, found.rule);
  const started = performance.now();
  let result: Awaited<ReturnType<typeof sendToChannel>> | null = null;
  let error: string | null = null;
  try {
    result = await sendToChannel(config, found.delivery.payload as DeliveryPayload, services.now(), services.notifications);
    if (!result.ok) error = result.status ? `the receiver answered ${result.status}` : "the receiver refused the message";
  } catch (cause) {
    // The message only: a URL in a cause's stack could carry the channel's secret path.
    error = cause instanceof Error ? (cause.cause instanceof Error ? `${cause.message}: ${cause.cause.message}` : cause.message) : String(cause);
  }
  const durationMs = Math.round(performance.now() - started);
  const status = error === null ? "DELIVERED" : input.lastAttempt ? "FAILED" : "PENDING";
  await services.db.transaction(async (tx) => {
    await tx.insert(notificationAttempts).values({
      deliveryId: input.deliveryId,
      attempt: input.attempt,
      responseStatus: result?.status ?? null,
      responseExcerpt: result?.excerpt ?? null,
      durationMs,
      error,
    });
    await tx
      .update(notificationDeliveries)
      .set({ status, attempts: sql`${notificationDeliveries.attempts} + 1`, ...(status === "DELIVERED" ? { deliveredAt: services.now() } : {}) })
      .where(eq(notificationDeliveries.id, input.deliveryId));
  });
  if (status === "PENDING") throw new DeliveryAttemptFailed(`attempt ${input.attempt} failed: ${error}`);
}
