import { and, asc, eq } from "drizzle-orm";
import { z } from "zod";
import { recordAudit } from "../audit/record-audit";
import { issueToken } from "../auth/tokens";
import type { DomainContext } from "../context";
import { conflictOnDuplicate } from "../db/errors";
import { clusters, clusterKinds } from "../db/schema";
import { notifyEngine } from "../deployments/engine-channel";
import { notFound } from "../errors";

export const createClusterInput = z.object({
  name: z
    .string()
    .min(1)
    .max(60)
    .regex(/^[a-z0-9][a-z0-9-]*$/, "use lowercase letters, digits and hyphens"),
  kind: z.enum(clusterKinds).default("local"),
  domainSuffix: z.string().min(1).max(200).default("localhost"),
  /** Services may be built from repositories on the engine's host (`file://`, paths); its engine must allow them too. */
  allowLocalRepositories: z.boolean().default(false),
});

export const updateClusterInput = z.object({
  clusterId: z.string().uuid(),
  allowLocalRepositories: z.boolean(),
});

export async function listClusters({ db, actor }: DomainContext) {
  return db.select().from(clusters).where(eq(clusters.organizationId, actor.organizationId)).orderBy(asc(clusters.name));
}

async function getCluster({ db, actor }: DomainContext, clusterId: string) {
  const [cluster] = await db
    .select()
    .from(clusters)
    .where(and(eq(clusters.id, clusterId), eq(clusters.organizationId, actor.organizationId)));
  if (!cluster) throw notFound("Cluster");
  return cluster;
}

/** Registers a cluster; its engine token is returned once and only its hash is kept. */
export async function createCluster(ctx: DomainContext, input: z.infer<typeof createClusterInput>) {
  const issued = issueToken("engine");
  return ctx.db.transaction(async (tx) => {
    const [cluster] = await conflictOnDuplicate(`Cluster "${input.name}"`, () =>
      tx
        .insert(clusters)
        .values({ organizationId: ctx.actor.organizationId, ...input, engineTokenHash: issued.hash })
        .returning(),
    );
    await recordAudit(tx, ctx.actor, { action: "cluster.create", targetType: "cluster", targetId: cluster!.id, changes: input });
    return { cluster: cluster!, engineToken: issued.token };
  });
}

/**
 * Changes a cluster's settings. Allowing local repositories lets whoever may create services
 * on the cluster build from any repository its engine's host can read: an ADMIN's decision, on
 * the record. Disallowing them refuses the next deployment of a service that uses one.
 */
export async function updateCluster(ctx: DomainContext, input: z.infer<typeof updateClusterInput>) {
  const cluster = await getCluster(ctx, input.clusterId);
  return ctx.db.transaction(async (tx) => {
    const [updated] = await tx.update(clusters).set({ allowLocalRepositories: input.allowLocalRepositories }).where(eq(clusters.id, cluster.id)).returning();
    await recordAudit(tx, ctx.actor, {
      action: "cluster.update",
      targetType: "cluster",
      targetId: cluster.id,
      changes: { before: { allowLocalRepositories: cluster.allowLocalRepositories }, after: { allowLocalRepositories: updated!.allowLocalRepositories } },
    });
    return updated!;
  });
}

/** Issues a new engine token; the old one stops working at once (its engine is disconnected). */
export async function rotateEngineToken(ctx: DomainContext, clusterId: string) {
  const cluster = await getCluster(ctx, clusterId);
  const issued = issueToken("engine");
  await ctx.db.transaction(async (tx) => {
    await tx.update(clusters).set({ engineTokenHash: issued.hash }).where(eq(clusters.id, cluster.id));
    await notifyEngine(tx, { clusterId: cluster.id, type: "engine:revoked" });
    await recordAudit(tx, ctx.actor, { action: "cluster.rotate_token", targetType: "cluster", targetId: cluster.id });
  });
  return { cluster, engineToken: issued.token };
}

export async function revokeEngineToken(ctx: DomainContext, clusterId: string) {
  const cluster = await getCluster(ctx, clusterId);
  await ctx.db.transaction(async (tx) => {
    await tx.update(clusters).set({ engineTokenHash: null }).where(eq(clusters.id, cluster.id));
    await notifyEngine(tx, { clusterId: cluster.id, type: "engine:revoked" });
    await recordAudit(tx, ctx.actor, { action: "cluster.revoke_token", targetType: "cluster", targetId: cluster.id });
  });
  return cluster;
}
