import { and, asc, eq } from "drizzle-orm";
import { z } from "zod";
import { kubernetesImageBuild } from "../../engine/protocol/image-build";
import { recordAudit } from "../audit/record-audit";
import { issueToken } from "../auth/tokens";
import type { DomainContext } from "../context";
import { conflictOnDuplicate } from "../db/errors";
import { clusters, clusterKinds } from "../db/schema";
import { notifyEngine } from "../deployments/engine-channel";
import { AppError, notFound } from "../errors";
import { domainSuffix } from "./domain-suffix";

export const createClusterInput = z.object({
  name: z
    .string()
    .min(1)
    .max(60)
    .regex(/^[a-z0-9][a-z0-9-]*$/, "use lowercase letters, digits and hyphens"),
  kind: z.enum(clusterKinds).default("local"),
  /** Services are served at `<service>-<env>-<project>.<domainSuffix>`: a DNS name, such as apps.example.com. */
  domainSuffix: domainSuffix.default("localhost"),
  /** Services may be built from repositories on the engine's host (`file://`, paths); its engine must allow them too. */
  allowLocalRepositories: z.boolean().default(false),
  /** A `kubernetes` cluster's: where images of services from git are built; unset, in the cluster by a build Job. */
  kubernetesBuild: kubernetesImageBuild.optional(),
});

export const updateClusterInput = z.object({
  clusterId: z.string().uuid(),
  allowLocalRepositories: z.boolean().optional(),
  /** Run apps even where the engine's host cannot sandbox them (they can then read the engine's files). */
  trusted: z.boolean().optional(),
  /** Cut services off from the host's loopback services other than their environment's databases. */
  isolateLoopback: z.boolean().optional(),
  /** A `kubernetes` cluster's: build images of services from git in the cluster, or on the engine's host through its Docker API. */
  kubernetesBuild: kubernetesImageBuild.optional(),
});

/** Where images are built is a `kubernetes` cluster's setting: the other kinds build on their engine's host always. */
function refuseBuildSettingOn(kind: (typeof clusterKinds)[number], build: unknown): void {
  if (build !== undefined && kind !== "kubernetes")
    throw new AppError("INVALID", `kubernetesBuild is a setting of kubernetes clusters; a ${kind} cluster builds on its engine's host`);
}

export async function listClusters({ db, actor }: DomainContext) {
  return db.select().from(clusters).where(eq(clusters.organizationId, actor.organizationId)).orderBy(asc(clusters.name));
}

export async function getCluster({ db, actor }: DomainContext, clusterId: string) {
  const [cluster] = await db
    .select()
    .from(clusters)
    .where(and(eq(clusters.id, clusterId), eq(clusters.organizationId, actor.organizationId)));
  if (!cluster) throw notFound("Cluster");
  return cluster;
}

/** Registers a cluster; its engine token is returned once and only its hash is kept. */
export async function createCluster(ctx: DomainContext, input: z.infer<typeof createClusterInput>) {
  refuseBuildSettingOn(input.kind, input.kubernetesBuild);
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
/** The settings an ADMIN changes on a cluster, each a choice about what its apps may do: audited with its before and after. */
export async function updateCluster(ctx: DomainContext, input: z.infer<typeof updateClusterInput>) {
  const { clusterId, ...given } = input;
  const changes = Object.fromEntries(Object.entries(given).filter(([, value]) => value !== undefined)) as Partial<
    Pick<typeof clusters.$inferSelect, "allowLocalRepositories" | "trusted" | "isolateLoopback" | "kubernetesBuild">
  >;
  if (Object.keys(changes).length === 0)
    throw new AppError("INVALID", "Nothing to change: give allowLocalRepositories, trusted, isolateLoopback or kubernetesBuild");
  const cluster = await getCluster(ctx, clusterId);
  refuseBuildSettingOn(cluster.kind, changes.kubernetesBuild);
  return ctx.db.transaction(async (tx) => {
    const [updated] = await tx.update(clusters).set(changes).where(eq(clusters.id, cluster.id)).returning();
    const before = Object.fromEntries(Object.keys(changes).map((key) => [key, cluster[key as keyof typeof changes]]));
    await recordAudit(tx, ctx.actor, { action: "cluster.update", targetType: "cluster", targetId: cluster.id, changes: { before, after: changes } });
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
