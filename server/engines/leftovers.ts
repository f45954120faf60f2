import { and, eq, inArray, isNotNull, lte, notInArray, sql } from "drizzle-orm";
import type { DiskUsage } from "../../engine/protocol/messages";
import type { Services } from "../context";
import { clusters, engineLeftovers, services } from "../db/schema";

/**
 * A service's files count as left over once reported this long after its service stopped
 * existing: a DELETE that just finished may have been reported while it was still removing them.
 */
export const LEFTOVER_GRACE_MS = 10 * 60_000;

/**
 * Records an engine's inventory: what it keeps of services that no longer exist becomes (or
 * stays) a leftover, what it no longer keeps is forgotten. Answers the leftovers the reaper
 * asked to remove, for the engine to remove now.
 */
export async function recordInventory(svc: Services, clusterId: string, usage: DiskUsage[]): Promise<string[]> {
  const now = svc.now();
  return svc.db.transaction(async (tx) => {
    const reported = usage.map((entry) => entry.serviceId);
    const existing =
      reported.length === 0
        ? new Set<string>()
        : new Set((await tx.select({ id: services.id }).from(services).where(inArray(services.id, reported))).map((row) => row.id));
    const orphans = usage.filter((entry) => !existing.has(entry.serviceId));
    await tx.delete(engineLeftovers).where(
      and(
        eq(engineLeftovers.clusterId, clusterId),
        orphans.length > 0
          ? notInArray(
              engineLeftovers.serviceId,
              orphans.map((entry) => entry.serviceId),
            )
          : sql`true`,
      ),
    );
    if (orphans.length === 0) return [];
    await tx
      .insert(engineLeftovers)
      .values(orphans.map((entry) => ({ clusterId, serviceId: entry.serviceId, bytes: entry.bytes, firstReportedAt: now, reportedAt: now })))
      .onConflictDoUpdate({
        target: [engineLeftovers.clusterId, engineLeftovers.serviceId],
        set: { bytes: sql`excluded.bytes`, reportedAt: sql`excluded.reported_at` },
      });
    const toRemove = await tx
      .select({ serviceId: engineLeftovers.serviceId })
      .from(engineLeftovers)
      .where(and(eq(engineLeftovers.clusterId, clusterId), isNotNull(engineLeftovers.removeRequestedAt)));
    return toRemove.map((row) => row.serviceId);
  });
}

export type Leftover = { clusterId: string; cluster: string; serviceId: string; bytes: number; since: string };

/**
 * Leftovers past their grace period, and in a real run, marks them for removal: the engine
 * removes them when it next reports its inventory.
 */
export async function reapLeftovers(svc: Services, options: { dryRun: boolean; organizationId?: string }): Promise<Leftover[]> {
  const due = await svc.db
    .select({ leftover: engineLeftovers, cluster: clusters.name })
    .from(engineLeftovers)
    .innerJoin(clusters, eq(clusters.id, engineLeftovers.clusterId))
    .where(
      and(
        lte(engineLeftovers.firstReportedAt, new Date(svc.now().getTime() - LEFTOVER_GRACE_MS)),
        options.organizationId ? eq(clusters.organizationId, options.organizationId) : sql`true`,
      ),
    )
    .orderBy(engineLeftovers.firstReportedAt);
  if (!options.dryRun && due.length > 0) {
    for (const { leftover } of due) {
      await svc.db
        .update(engineLeftovers)
        .set({ removeRequestedAt: svc.now() })
        .where(and(eq(engineLeftovers.clusterId, leftover.clusterId), eq(engineLeftovers.serviceId, leftover.serviceId)));
    }
  }
  return due.map(({ leftover, cluster }) => ({
    clusterId: leftover.clusterId,
    cluster,
    serviceId: leftover.serviceId,
    bytes: leftover.bytes,
    since: leftover.firstReportedAt.toISOString(),
  }));
}
