import { and, asc, eq } from "drizzle-orm";
import { z } from "zod";
import { dnsLabel, environmentMode } from "../../engine/protocol/snapshot";
import { recordAudit } from "../audit/record-audit";
import type { DomainContext } from "../context";
import { conflictOnDuplicate } from "../db/errors";
import { clusters, environments } from "../db/schema";
import { AppError, notFound } from "../errors";
import { getProject } from "../projects/projects";

export const createEnvironmentInput = z.object({
  projectId: z.string().uuid(),
  name: dnsLabel,
  mode: environmentMode.default("DEVELOPMENT"),
  /** Defaults to the organization's only cluster, or the one named `local`. */
  clusterId: z.string().uuid().optional(),
});

export async function listEnvironments(ctx: DomainContext, projectId: string) {
  const { db, actor } = ctx;
  await getProject(ctx, projectId);
  return db
    .select()
    .from(environments)
    .where(and(eq(environments.projectId, projectId), eq(environments.organizationId, actor.organizationId)))
    .orderBy(asc(environments.name));
}

export async function getEnvironment({ db, actor }: DomainContext, environmentId: string) {
  const [environment] = await db
    .select()
    .from(environments)
    .where(and(eq(environments.id, environmentId), eq(environments.organizationId, actor.organizationId)));
  if (!environment) throw notFound("Environment");
  return environment;
}

async function chooseCluster({ db, actor }: DomainContext, clusterId: string | undefined) {
  const candidates = await db.select().from(clusters).where(eq(clusters.organizationId, actor.organizationId));
  if (clusterId) {
    const cluster = candidates.find((c) => c.id === clusterId);
    if (!cluster) throw notFound("Cluster");
    return cluster;
  }
  const chosen = candidates.length === 1 ? candidates[0] : candidates.find((c) => c.name === "local");
  if (!chosen) throw new AppError("INVALID", "Choose a cluster for the environment: the organization has several");
  return chosen;
}

export async function createEnvironment(ctx: DomainContext, input: z.infer<typeof createEnvironmentInput>) {
  const project = await getProject(ctx, input.projectId);
  const cluster = await chooseCluster(ctx, input.clusterId);
  return ctx.db.transaction(async (tx) => {
    const [environment] = await conflictOnDuplicate(`Environment "${input.name}" in project "${project.name}"`, () =>
      tx
        .insert(environments)
        .values({ organizationId: ctx.actor.organizationId, projectId: project.id, name: input.name, mode: input.mode, clusterId: cluster.id })
        .returning(),
    );
    await recordAudit(tx, ctx.actor, {
      action: "environment.create",
      targetType: "environment",
      targetId: environment!.id,
      changes: { project: project.name, name: input.name, mode: input.mode, cluster: cluster.name },
    });
    return environment!;
  });
}
