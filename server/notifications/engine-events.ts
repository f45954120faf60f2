import { eq } from "drizzle-orm";
import type { Executor } from "../db/client";
import { clusters } from "../db/schema";
import { notify } from "./enqueue";

/**
 * An engine's connection ended (socket.io's reason: "transport close", "ping timeout" …). Every
 * rule of the cluster's organization that follows engine.disconnected hears of it: an engine
 * serves the environments of every project.
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
