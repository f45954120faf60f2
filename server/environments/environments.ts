import { and, asc, eq } from "drizzle-orm";
import { z } from "zod";
import { dnsLabel, environmentMode } from "../../engine/protocol/snapshot";
import { recordAudit } from "../audit/record-audit";
import type { DomainContext } from "../context";
import { conflictOnDuplicate } from "../db/errors";
import { clusters, environments } from "../db/schema";
import { assertClusterSleeps } from "../clusters/sleep-support";
import { AppError, notFound } from "../errors";
import { environmentSleepAfterMinutes, timestamp } from "../input-schemas";
import { getProject } from "../projects/projects";
import { ruleFor } from "./rules";
import { environmentSchedule } from "./schedule";

export const createEnvironmentInput = z.object({
  projectId: z.string().uuid(),
  name: dnsLabel,
  /** Unless given, from the project's matching rule, else DEVELOPMENT. */
  mode: environmentMode.optional(),
  /** Unless given, from the matching rule, else the organization's only cluster or the one named `local`. */
  clusterId: z.string().uuid().optional(),
  schedule: environmentSchedule.optional(),
  /** The environment is deleted this many seconds after its creation (unless protected). */
  lifetimeSeconds: z
    .number()
    .int()
    .min(60)
    .max(365 * 24 * 3600)
    .optional(),
  protected: z.boolean().default(false),
});

export const updateEnvironmentInput = z.object({
  environmentId: z.string().uuid(),
  schedule: environmentSchedule.nullable().optional(),
  /** An absolute expiry, or null to keep the environment. */
  expiresAt: timestamp.nullable().optional(),
  protected: z.boolean().optional(),
  /** Sleep when idle: the default minutes without a request of its applications and containers that set none; null: never (issue 16). */
  sleepAfterMinutes: environmentSleepAfterMinutes.nullable().optional(),
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

export async function chooseCluster(ctx: DomainContext, clusterId: string | undefined | null) {
  return pickCluster(await organizationClusters(ctx), clusterId);
}

/** The organization's clusters, for pickCluster (a clone reads them beside its other reads). */
export async function organizationClusters({ db, actor }: DomainContext) {
  return db.select().from(clusters).where(eq(clusters.organizationId, actor.organizationId));
}

/** The cluster asked for among the organization's; when none is, its only one or the one named `local`. */
export function pickCluster<C extends { id: string; name: string }>(candidates: C[], clusterId: string | undefined | null): C {
  if (clusterId) {
    const cluster = candidates.find((c) => c.id === clusterId);
    if (!cluster) throw notFound("Cluster");
    return cluster;
  }
  const chosen = candidates.length === 1 ? candidates[0] : candidates.find((c) => c.name === "local");
  if (!chosen) throw new AppError("INVALID", "Choose a cluster for the environment: the organization has several");
  return chosen;
}

export async function createEnvironment(ctx: DomainContext, input: z.input<typeof createEnvironmentInput>) {
  const parsed = createEnvironmentInput.parse(input);
  const project = await getProject(ctx, parsed.projectId);
  const rule = await ruleFor(ctx.db, project.id, parsed.name);
  const cluster = await chooseCluster(ctx, parsed.clusterId ?? rule?.clusterId);
  const lifetimeSeconds = parsed.lifetimeSeconds ?? rule?.lifetimeSeconds ?? null;
  const values = {
    organizationId: ctx.actor.organizationId,
    projectId: project.id,
    name: parsed.name,
    mode: parsed.mode ?? rule?.mode ?? "DEVELOPMENT",
    clusterId: cluster.id,
    schedule: parsed.schedule ?? rule?.schedule ?? null,
    scheduleCheckedAt: ctx.now(),
    expiresAt: lifetimeSeconds ? new Date(ctx.now().getTime() + lifetimeSeconds * 1000) : null,
    protected: parsed.protected,
  };
  return ctx.db.transaction(async (tx) => {
    const [environment] = await conflictOnDuplicate(`Environment "${parsed.name}" in project "${project.name}"`, () =>
      tx.insert(environments).values(values).returning(),
    );
    await recordAudit(tx, ctx.actor, {
      action: "environment.create",
      targetType: "environment",
      targetId: environment!.id,
      changes: {
        project: project.name,
        name: parsed.name,
        mode: values.mode,
        cluster: cluster.name,
        ...(rule ? { rule: rule.namePattern } : {}),
        ...(values.expiresAt ? { expiresAt: values.expiresAt.toISOString() } : {}),
      },
    });
    return environment!;
  });
}

export async function updateEnvironment(ctx: DomainContext, input: z.infer<typeof updateEnvironmentInput>) {
  const environment = await getEnvironment(ctx, input.environmentId);
  const changes = {
    ...(input.schedule !== undefined ? { schedule: input.schedule, scheduleCheckedAt: ctx.now() } : {}),
    ...(input.expiresAt !== undefined ? { expiresAt: input.expiresAt ? new Date(input.expiresAt) : null } : {}),
    ...(input.protected !== undefined ? { protected: input.protected } : {}),
    ...(input.sleepAfterMinutes !== undefined ? { sleepAfterMinutes: input.sleepAfterMinutes } : {}),
  };
  // Unknown fields are dropped by the schema: a misspelt one would otherwise change nothing and say it did.
  if (Object.keys(changes).length === 0) throw new AppError("INVALID", "Nothing to change: give schedule, expiresAt, protected or sleepAfterMinutes");
  await assertClusterSleeps(ctx, environment.clusterId, input.sleepAfterMinutes);
  return ctx.db.transaction(async (tx) => {
    const [updated] = await tx.update(environments).set(changes).where(eq(environments.id, environment.id)).returning();
    await recordAudit(tx, ctx.actor, {
      action: "environment.update",
      targetType: "environment",
      targetId: environment.id,
      changes: {
        before: {
          schedule: environment.schedule,
          expiresAt: environment.expiresAt?.toISOString() ?? null,
          protected: environment.protected,
          sleepAfterMinutes: environment.sleepAfterMinutes,
        },
        after: {
          schedule: updated!.schedule,
          expiresAt: updated!.expiresAt?.toISOString() ?? null,
          protected: updated!.protected,
          sleepAfterMinutes: updated!.sleepAfterMinutes,
        },
      },
    });
    return updated!;
  });
}
