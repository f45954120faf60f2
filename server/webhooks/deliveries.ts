import { and, desc, eq, lt } from "drizzle-orm";
import { z } from "zod";
import { recordAudit } from "../audit/record-audit";
import type { DomainContext } from "../context";
import { webhookDeliveries } from "../db/schema";
import { notFound } from "../errors";
import { addJob } from "../jobs/add-job";
import { integerParam } from "../input-schemas";
import { PROCESS_JOB_KEY, WEBHOOK_QUEUE } from "./batcher";
import { getConnection } from "./connections";

export const listDeliveriesInput = z.object({
  connectionId: z.string().uuid(),
  limit: integerParam({ min: 1, max: 200 }).default(50),
  /** Page backwards: deliveries received before the one with this sequence number. */
  before: integerParam({ min: 1, max: Number.MAX_SAFE_INTEGER }).optional(),
});

/** A connection's deliveries, newest first, without their payloads (see getDelivery). */
export async function listDeliveries(ctx: DomainContext, input: z.infer<typeof listDeliveriesInput>) {
  await getConnection(ctx, input.connectionId);
  return ctx.db
    .select({
      id: webhookDeliveries.id,
      seq: webhookDeliveries.seq,
      deliveryId: webhookDeliveries.deliveryId,
      event: webhookDeliveries.event,
      status: webhookDeliveries.status,
      outcome: webhookDeliveries.outcome,
      error: webhookDeliveries.error,
      attempts: webhookDeliveries.attempts,
      receivedAt: webhookDeliveries.receivedAt,
      processedAt: webhookDeliveries.processedAt,
    })
    .from(webhookDeliveries)
    .where(and(eq(webhookDeliveries.connectionId, input.connectionId), input.before ? lt(webhookDeliveries.seq, input.before) : undefined))
    .orderBy(desc(webhookDeliveries.seq))
    .limit(input.limit);
}

export async function getDelivery(ctx: DomainContext, deliveryId: string) {
  const [row] = await ctx.db
    .select()
    .from(webhookDeliveries)
    .where(and(eq(webhookDeliveries.id, deliveryId), eq(webhookDeliveries.organizationId, ctx.actor.organizationId)));
  if (!row) throw notFound("Delivery");
  return row;
}

/** Processes a stored delivery again, as if it had just arrived (after fixing a service's repository, say). */
export async function redeliver(ctx: DomainContext, deliveryId: string) {
  const delivery = await getDelivery(ctx, deliveryId);
  return ctx.db.transaction(async (tx) => {
    const [row] = await tx
      .update(webhookDeliveries)
      .set({ status: "PENDING", outcome: null, error: null, attempts: 0, processedAt: null })
      .where(eq(webhookDeliveries.id, delivery.id))
      .returning();
    await addJob(tx, "process_webhooks", {}, { queueName: WEBHOOK_QUEUE, jobKey: PROCESS_JOB_KEY });
    await recordAudit(tx, ctx.actor, {
      action: "webhook_delivery.redeliver",
      targetType: "webhook_delivery",
      targetId: delivery.id,
      changes: { deliveryId: delivery.deliveryId, event: delivery.event },
    });
    return row!;
  });
}
