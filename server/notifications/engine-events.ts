import { eq } from "drizzle-orm";
import type { Services } from "../context";
import type { Executor } from "../db/client";
import { clusters } from "../db/schema";
import { addJob } from "../jobs/add-job";
import { notify } from "./enqueue";

/**
 * A heartbeat the engine sent just before its connection ended may be stored a moment after the
 * disconnection was seen: the engine is taken to be back only on a hello or heartbeat later than this.
 */
const IN_FLIGHT_MS = 1_000;

/**
 * An engine's connection ended (socket.io's reason: "transport close", "ping timeout" …). It is
 * reported only if the engine is still away after the grace period (an engine restart or a
 * network blip is not worth a page): a job checks then. Each disconnection of a cluster replaces
 * its pending check (the job key), so an engine that flaps is reported once, a grace period
 * after it last went away, and only if it did not come back.
 */
export async function engineDisconnected(services: Services, clusterId: string, reason: string, at: Date): Promise<void> {
  await addJob(
    services.db,
    "notify_engine_disconnected",
    { clusterId, reason, disconnectedAt: at.toISOString() },
    { jobKey: `engine-disconnected:${clusterId}`, runAt: new Date(at.getTime() + services.notifications.engineDisconnectGraceMs), maxAttempts: 5 },
  );
}

/**
 * The check a grace period after a disconnection: an engine that said hello or sent a heartbeat
 * since (both stamp lastHeartbeatAt) is back, and nothing is sent. True when it was reported.
 */
export async function reportEngineIfStillAway(services: Services, input: { clusterId: string; reason: string; disconnectedAt: string }): Promise<boolean> {
  const disconnectedAt = new Date(input.disconnectedAt);
  const [cluster] = await services.db.select({ lastSeen: clusters.lastHeartbeatAt }).from(clusters).where(eq(clusters.id, input.clusterId));
  if (!cluster) return false;
  if (cluster.lastSeen && cluster.lastSeen.getTime() > disconnectedAt.getTime() + IN_FLIGHT_MS) return false;
  await services.db.transaction((tx) => notifyEngineDisconnected(tx, input.clusterId, input.reason, disconnectedAt));
  return true;
}

/**
 * Every rule of the cluster's organization that follows engine.disconnected hears of it: an
 * engine serves the environments of every project.
 */
export async function notifyEngineDisconnected(db: Executor, clusterId: string, reason: string, at: Date): Promise<void> {
  const [cluster] = await db.select({ organizationId: clusters.organizationId, name: clusters.name }).from(clusters).where(eq(clusters.id, clusterId));
  if (!cluster) return;
  await notify(
    db,
    "engine.disconnected",
    { organizationId: cluster.organizationId, organization: true },
    { cluster: { id: clusterId, name: cluster.name }, text: `The engine of cluster ${cluster.name} disconnected (${reason})` },
    at,
  );
}
