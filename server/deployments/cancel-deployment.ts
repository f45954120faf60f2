import { eq } from "drizzle-orm";
import { terminalStatuses } from "../../engine/protocol/events";
import { recordAudit } from "../audit/record-audit";
import type { DomainContext } from "../context";
import { deployments } from "../db/schema";
import { AppError } from "../errors";
import { notifyEngine } from "./engine-channel";
import { lockEnvironment } from "./environment-queue";
import { appendControlEvent } from "./events";
import { getDeployment } from "./queries";

/**
 * A deployment still waiting in the queue is canceled at once. One that an engine holds gets a
 * cancel request: the engine stops at its next safe point, keeps the previous release, and
 * reports the cancel, which is what ends the deployment.
 */
export async function cancelDeployment(ctx: DomainContext, deploymentId: string) {
  const found = await getDeployment(ctx, deploymentId);
  return ctx.db.transaction(async (tx) => {
    // The environment's lock before the deployment's row: the order in which the end of a
    // deployment takes them too (server/engines/engine-session.ts), so neither waits for the other.
    await lockEnvironment(tx, found.environmentId);
    const [current] = await tx.select().from(deployments).where(eq(deployments.id, found.id));
    if (!current || terminalStatuses.has(current.status)) throw new AppError("CONFLICT", `Deployment already ended (${current?.status ?? "deleted"})`);
    if (current.cancelRequestedAt) return current;
    const at = ctx.now();
    await tx.update(deployments).set({ cancelRequestedAt: at }).where(eq(deployments.id, current.id));
    let updated = await appendControlEvent(tx, ctx, current, {
      step: "deployment",
      status: "requested",
      message: `cancel requested by ${ctx.actor.label}`,
      at,
    });
    if (!current.leasedAt) {
      updated = await appendControlEvent(tx, ctx, updated, { step: "deployment", status: "canceled", message: "canceled before it started", at });
    } else {
      await notifyEngine(tx, { clusterId: current.clusterId, type: "deployment:cancel", deploymentId: current.id });
    }
    await recordAudit(tx, ctx.actor, { action: "deployment.cancel", targetType: "deployment", targetId: current.id });
    return updated;
  });
}
