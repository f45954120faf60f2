import { and, desc, eq } from "drizzle-orm";
import { z } from "zod";
import { environmentMode } from "../../engine/protocol/snapshot";
import { recordAudit } from "../audit/record-audit";
import { getCluster } from "../clusters/clusters";
import type { DomainContext } from "../context";
import type { Executor } from "../db/client";
import { environmentRules } from "../db/schema";
import { notFound } from "../errors";
import { getProject } from "../projects/projects";
import { environmentSchedule } from "./schedule";

export const createRuleInput = z.object({
  projectId: z.string().uuid(),
  namePattern: z
    .string()
    .min(1)
    .max(60)
    .regex(/^[a-z0-9*-]+$/, "use lowercase letters, digits, hyphens and * as a wildcard"),
  priority: z.number().int().min(-1000).max(1000).default(0),
  mode: environmentMode.optional(),
  clusterId: z.string().uuid().optional(),
  schedule: environmentSchedule.optional(),
  /** Environments it names are deleted this many seconds after their creation. */
  lifetimeSeconds: z
    .number()
    .int()
    .min(60)
    .max(365 * 24 * 3600)
    .optional(),
});

/** `pr-*` matches `pr-12`; every other character matches itself. */
export function matchesPattern(pattern: string, name: string): boolean {
  const expression = pattern
    .split("*")
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
    .join(".*");
  return new RegExp(`^${expression}$`).test(name);
}

export async function listRules(ctx: DomainContext, projectId: string) {
  await getProject(ctx, projectId);
  return ctx.db
    .select()
    .from(environmentRules)
    .where(and(eq(environmentRules.projectId, projectId), eq(environmentRules.organizationId, ctx.actor.organizationId)))
    .orderBy(desc(environmentRules.priority));
}

export async function createRule(ctx: DomainContext, input: z.infer<typeof createRuleInput>) {
  await getProject(ctx, input.projectId);
  // Another organization's cluster is "not found", as an unknown id is.
  if (input.clusterId) await getCluster(ctx, input.clusterId);
  return ctx.db.transaction(async (tx) => {
    const [rule] = await tx
      .insert(environmentRules)
      .values({ organizationId: ctx.actor.organizationId, ...input })
      .returning();
    await recordAudit(tx, ctx.actor, { action: "environment_rule.create", targetType: "environment_rule", targetId: rule!.id, changes: input });
    return rule!;
  });
}

export async function deleteRule(ctx: DomainContext, ruleId: string) {
  return ctx.db.transaction(async (tx) => {
    const [rule] = await tx
      .delete(environmentRules)
      .where(and(eq(environmentRules.id, ruleId), eq(environmentRules.organizationId, ctx.actor.organizationId)))
      .returning();
    if (!rule) throw notFound("Environment rule");
    await recordAudit(tx, ctx.actor, {
      action: "environment_rule.delete",
      targetType: "environment_rule",
      targetId: rule.id,
      changes: { namePattern: rule.namePattern },
    });
    return rule;
  });
}

/** The rule a new environment of this name gets: highest priority first, then the oldest. */
export async function ruleFor(db: Executor, projectId: string, name: string) {
  const rules = await db
    .select()
    .from(environmentRules)
    .where(eq(environmentRules.projectId, projectId))
    .orderBy(desc(environmentRules.priority), environmentRules.createdAt);
  return rules.find((rule) => matchesPattern(rule.namePattern, name)) ?? null;
}
