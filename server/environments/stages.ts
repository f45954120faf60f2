import { and, asc, eq, sql } from "drizzle-orm";
import { z } from "zod";
import { DEFAULT_STAGE, newStageName, stageName, type DeploymentAction, type DeploymentStage } from "../../engine/protocol/snapshot";
import { recordAudit } from "../audit/record-audit";
import type { DomainContext } from "../context";
import type { Executor } from "../db/client";
import { conflictOnDuplicate } from "../db/errors";
// The environment's row lock also orders stage changes: two reorders at once would interleave their positions.
import { lockEnvironment } from "../deployments/environment-queue";
import { deploymentStages, services } from "../db/schema";
import { AppError, notFound } from "../errors";
import { getService } from "../services/services";
import { getEnvironment } from "./environments";

/**
 * Deployment stages (issue 16): an environment's services in ordered groups. A deployment runs a
 * stage once the one before it is done and stops at a stage that failed. Services placed in no
 * stage form the implicit first one, `default`, which cannot be moved or removed; removing a
 * stage puts its services back there.
 */

const position = z.number().int().min(1, "positions start at 1 (the default stage comes before every other)").max(1000);

export const addStageInput = z.object({
  environmentId: z.string().uuid(),
  name: newStageName,
  /** Where it goes among the environment's stages, from 1; last by default. */
  position: position.optional(),
});
export const moveStageInput = z.object({ stageId: z.string().uuid(), position });
export const removeStageInput = z.object({ stageId: z.string().uuid() });
export const setServiceStageInput = z.object({
  serviceId: z.string().uuid(),
  /** A stage of the service's environment, by name; `default` for none. */
  stage: stageName,
});

type StageRow = typeof deploymentStages.$inferSelect;
type ServiceRow = typeof services.$inferSelect;

/** Order of kinds inside a stage: what others depend on first; reversed to stop and delete. */
const kindOrder = ["DATABASE", "JOB", "CONTAINER", "APPLICATION"] as const;

export function orderServices<T extends { kind: ServiceRow["kind"]; name: string }>(list: T[], action: DeploymentAction): T[] {
  const sorted = [...list].sort((a, b) => kindOrder.indexOf(a.kind) - kindOrder.indexOf(b.kind) || a.name.localeCompare(b.name));
  return action === "STOP" || action === "DELETE" ? sorted.reverse() : sorted;
}

/** An environment's stages in their order, `default` first, each with its services in deployment order. */
export type EnvironmentStage = {
  /** Null for the implicit `default` stage. */
  id: string | null;
  name: string;
  /** 0 for `default`, then 1, 2, … */
  position: number;
  services: { id: string; name: string; kind: ServiceRow["kind"] }[];
};

export async function listStages(ctx: DomainContext, environmentId: string): Promise<EnvironmentStage[]> {
  const environment = await getEnvironment(ctx, environmentId);
  const stages = await stagesOf(ctx.db, environment.id);
  const members = await ctx.db.select().from(services).where(eq(services.environmentId, environment.id));
  return groupByStage(stages, members, "DEPLOY").map(({ stage, services: list }) => ({
    id: stage?.id ?? null,
    name: stage?.name ?? DEFAULT_STAGE,
    position: stage?.position ?? 0,
    services: list.map(({ id, name, kind }) => ({ id, name, kind })),
  }));
}

export async function stagesOf(db: Executor, environmentId: string): Promise<StageRow[]> {
  return db.select().from(deploymentStages).where(eq(deploymentStages.environmentId, environmentId)).orderBy(asc(deploymentStages.position));
}

/**
 * Services grouped by stage in the order `action` acts on them: `default` and then the stages by
 * position to deploy or restart, the reverse to stop and delete; inside each, orderServices' order.
 * Every stage is listed, empty ones too.
 */
function groupByStage<T extends Pick<ServiceRow, "kind" | "name" | "stageId">>(stages: StageRow[], members: T[], action: DeploymentAction) {
  const known = new Set(stages.map((stage) => stage.id));
  const groups = [null, ...stages].map((stage) => ({
    stage,
    services: orderServices(
      members.filter((service) => (stage ? service.stageId === stage.id : !service.stageId || !known.has(service.stageId))),
      action,
    ),
  }));
  return action === "STOP" || action === "DELETE" ? groups.reverse() : groups;
}

/**
 * The stages a deployment's snapshot carries, and its services in the order to act on them
 * (server/deployments/snapshot.ts): stages without any of the deployed services are left out,
 * so `stages` needs only those the deployed services are in (in any order).
 */
export function deploymentStagesOf<T extends Pick<ServiceRow, "id" | "kind" | "name" | "stageId">>(
  stages: StageRow[],
  deployed: T[],
  action: DeploymentAction,
): { stages: DeploymentStage[]; services: T[] } {
  const byPosition = [...stages].sort((a, b) => a.position - b.position);
  const groups = groupByStage(byPosition, deployed, action).filter((group) => group.services.length > 0);
  return {
    stages: groups.map((group) => ({ name: group.stage?.name ?? DEFAULT_STAGE, serviceIds: group.services.map((service) => service.id) })),
    services: groups.flatMap((group) => group.services),
  };
}

/** Writes positions 1…n in the given order (only the rows whose position changes). */
async function renumber(db: Executor, ordered: StageRow[], now: Date): Promise<void> {
  for (const [index, stage] of ordered.entries()) {
    if (stage.position !== index + 1)
      await db
        .update(deploymentStages)
        .set({ position: index + 1, updatedAt: now })
        .where(eq(deploymentStages.id, stage.id));
  }
}

async function getStage(ctx: DomainContext, stageId: string): Promise<StageRow> {
  const [stage] = await ctx.db
    .select()
    .from(deploymentStages)
    .where(and(eq(deploymentStages.id, stageId), eq(deploymentStages.organizationId, ctx.actor.organizationId)));
  if (!stage) throw notFound("Stage");
  return stage;
}

export async function addStage(ctx: DomainContext, input: z.input<typeof addStageInput>): Promise<StageRow> {
  const parsed = addStageInput.parse(input);
  const environment = await getEnvironment(ctx, parsed.environmentId);
  return ctx.db.transaction(async (tx) => {
    await lockEnvironment(tx, environment.id);
    const stages = await stagesOf(tx, environment.id);
    const at = Math.min(parsed.position ?? stages.length + 1, stages.length + 1);
    const [stage] = await conflictOnDuplicate(`Stage "${parsed.name}" in environment "${environment.name}"`, () =>
      tx
        .insert(deploymentStages)
        .values({ organizationId: environment.organizationId, environmentId: environment.id, name: parsed.name, position: stages.length + 1 })
        .returning(),
    );
    const ordered = [...stages];
    ordered.splice(at - 1, 0, stage!);
    await renumber(tx, ordered, ctx.now());
    await recordAudit(tx, ctx.actor, {
      action: "stage.add",
      targetType: "environment",
      targetId: environment.id,
      changes: { stage: parsed.name, position: at },
    });
    return { ...stage!, position: at };
  });
}

export async function moveStage(ctx: DomainContext, input: z.input<typeof moveStageInput>): Promise<StageRow> {
  const parsed = moveStageInput.parse(input);
  const stage = await getStage(ctx, parsed.stageId);
  return ctx.db.transaction(async (tx) => {
    await lockEnvironment(tx, stage.environmentId);
    const stages = await stagesOf(tx, stage.environmentId);
    const from = stages.findIndex((candidate) => candidate.id === stage.id);
    if (from < 0) throw notFound("Stage");
    const to = Math.min(parsed.position, stages.length);
    const ordered = [...stages];
    const [moved] = ordered.splice(from, 1);
    ordered.splice(to - 1, 0, moved!);
    await renumber(tx, ordered, ctx.now());
    await recordAudit(tx, ctx.actor, {
      action: "stage.move",
      targetType: "environment",
      targetId: stage.environmentId,
      changes: { stage: stage.name, position: { from: from + 1, to } },
    });
    return { ...moved!, position: to };
  });
}

export async function removeStage(ctx: DomainContext, input: z.input<typeof removeStageInput>): Promise<StageRow & { services: string[] }> {
  const parsed = removeStageInput.parse(input);
  const stage = await getStage(ctx, parsed.stageId);
  return ctx.db.transaction(async (tx) => {
    await lockEnvironment(tx, stage.environmentId);
    // Its services go back to the default stage (the foreign key sets theirs to null).
    const members = await tx.select({ name: services.name }).from(services).where(eq(services.stageId, stage.id));
    const [removed] = await tx.delete(deploymentStages).where(eq(deploymentStages.id, stage.id)).returning();
    if (!removed) throw notFound("Stage");
    await renumber(tx, await stagesOf(tx, stage.environmentId), ctx.now());
    const names = members.map((member) => member.name).sort();
    await recordAudit(tx, ctx.actor, {
      action: "stage.remove",
      targetType: "environment",
      targetId: stage.environmentId,
      changes: { stage: stage.name, servicesMovedToDefault: names },
    });
    return { ...removed, services: names };
  });
}

/** Puts a service in a stage of its environment (`default`: in none). */
export async function setServiceStage(ctx: DomainContext, input: z.input<typeof setServiceStageInput>): Promise<{ serviceId: string; stage: string }> {
  const parsed = setServiceStageInput.parse(input);
  const service = await getService(ctx, parsed.serviceId);
  return ctx.db.transaction(async (tx) => {
    await lockEnvironment(tx, service.environmentId);
    const stages = await stagesOf(tx, service.environmentId);
    const target = parsed.stage === DEFAULT_STAGE ? null : stages.find((stage) => stage.name === parsed.stage);
    if (target === undefined) {
      const known = [DEFAULT_STAGE, ...stages.map((stage) => stage.name)].map((name) => `"${name}"`).join(", ");
      throw new AppError("INVALID", `The environment has no stage "${parsed.stage}" (its stages: ${known})`);
    }
    const from = stages.find((stage) => stage.id === service.stageId)?.name ?? DEFAULT_STAGE;
    await tx
      .update(services)
      .set({ stageId: target?.id ?? null, updatedAt: sql`now()` })
      .where(eq(services.id, service.id));
    await recordAudit(tx, ctx.actor, {
      action: "service.stage",
      targetType: "service",
      targetId: service.id,
      changes: { service: service.name, stage: { from, to: parsed.stage } },
    });
    return { serviceId: service.id, stage: parsed.stage };
  });
}
