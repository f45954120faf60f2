import { randomBytes, randomUUID } from "node:crypto";
import { and, desc, eq, inArray } from "drizzle-orm";
import { z } from "zod";
import { recordAudit, REDACTED } from "../audit/record-audit";
import type { DomainContext, Services } from "../context";
import { environments, notificationAttempts, notificationDeliveries, notificationRules, projects } from "../db/schema";
import { AppError, notFound } from "../errors";
import { cipherFor } from "../secrets/organization-cipher";
import { enqueueDelivery, TEST_EVENT } from "./enqueue";
import { notificationEvents } from "./events";
import type { ChannelConfig, ChannelInput, createRuleInput } from "./rule-input";
import { assertPublicHost, assertPublicTarget } from "./target-address";

export const updateRuleInput = z.object({
  ruleId: z.string().uuid(),
  events: z.array(z.enum(notificationEvents)).min(1).optional(),
  enabled: z.boolean().optional(),
});

type RuleRow = typeof notificationRules.$inferSelect;

/** Authenticated data of the sealed settings: a ciphertext cannot be moved to another rule. */
const configContext = (ruleId: string) => `notification_rule:${ruleId}:config`;

/** What the API shows of a channel: the receiver's host (a URL's path is its secret for Slack and Discord) or the recipients. */
function maskTarget(channel: ChannelInput): string {
  if (channel.type === "email") return `${channel.to.join(", ")} via ${channel.smtp.host}:${channel.smtp.port}`;
  const url = new URL(channel.url);
  return `${url.protocol}//${url.host}/…`;
}

export function describeRule(row: RuleRow) {
  return {
    id: row.id,
    projectId: row.projectId,
    environmentId: row.environmentId,
    name: row.name,
    events: row.events,
    channel: row.channel,
    target: row.target,
    enabled: row.enabled,
    createdAt: row.createdAt.toISOString(),
  };
}

async function checkScope(ctx: DomainContext, projectId: string, environmentId: string | undefined) {
  const [project] = await ctx.db
    .select({ id: projects.id })
    .from(projects)
    .where(and(eq(projects.id, projectId), eq(projects.organizationId, ctx.actor.organizationId)));
  if (!project) throw notFound("Project");
  if (!environmentId) return;
  const [environment] = await ctx.db
    .select({ id: environments.id })
    .from(environments)
    .where(and(eq(environments.id, environmentId), eq(environments.projectId, projectId)));
  if (!environment) throw notFound("Environment");
}

/** Creates a rule; a generic webhook's signing secret is returned here only. */
export async function createRule(ctx: DomainContext, input: z.infer<typeof createRuleInput>) {
  await checkScope(ctx, input.projectId, input.environmentId);
  if (input.channel.type === "email") await assertPublicHost(input.channel.smtp.host, ctx.notifications);
  else await assertPublicTarget(input.channel.url, ctx.notifications);
  const cipher = await cipherFor(ctx.db, ctx.keyring, ctx.actor.organizationId);
  const id = randomUUID();
  const secret = input.channel.type === "webhook" ? randomBytes(32).toString("hex") : null;
  const config: ChannelConfig = secret ? { ...input.channel, secret } : input.channel;
  return ctx.db.transaction(async (tx) => {
    const [row] = await tx
      .insert(notificationRules)
      .values({
        id,
        organizationId: ctx.actor.organizationId,
        projectId: input.projectId,
        environmentId: input.environmentId ?? null,
        name: input.name,
        events: [...new Set(input.events)],
        channel: input.channel.type,
        encryptedConfig: cipher.encrypt(JSON.stringify(config), configContext(id)),
        target: maskTarget(input.channel),
        enabled: input.enabled,
      })
      .returning();
    await recordAudit(tx, ctx.actor, {
      action: "notification_rule.create",
      targetType: "notification_rule",
      targetId: id,
      changes: {
        name: input.name,
        projectId: input.projectId,
        environmentId: input.environmentId ?? null,
        events: row!.events,
        channel: input.channel.type,
        target: REDACTED,
      },
    });
    return { rule: row!, secret };
  });
}

export async function listRules(ctx: DomainContext, input: { projectId?: string }) {
  return ctx.db
    .select()
    .from(notificationRules)
    .where(and(eq(notificationRules.organizationId, ctx.actor.organizationId), input.projectId ? eq(notificationRules.projectId, input.projectId) : undefined))
    .orderBy(notificationRules.name);
}

export async function getRule(ctx: DomainContext, ruleId: string) {
  const [row] = await ctx.db
    .select()
    .from(notificationRules)
    .where(and(eq(notificationRules.id, ruleId), eq(notificationRules.organizationId, ctx.actor.organizationId)));
  if (!row) throw notFound("Notification rule");
  return row;
}

export async function updateRule(ctx: DomainContext, input: z.infer<typeof updateRuleInput>) {
  const existing = await getRule(ctx, input.ruleId);
  const changes = {
    ...(input.events ? { events: [...new Set(input.events)] } : {}),
    ...(input.enabled !== undefined ? { enabled: input.enabled } : {}),
  };
  if (Object.keys(changes).length === 0) throw new AppError("INVALID", "Nothing to change: give events or enabled");
  return ctx.db.transaction(async (tx) => {
    const [row] = await tx.update(notificationRules).set(changes).where(eq(notificationRules.id, existing.id)).returning();
    await recordAudit(tx, ctx.actor, { action: "notification_rule.update", targetType: "notification_rule", targetId: existing.id, changes });
    return row!;
  });
}

/** Removes the rule with its delivery log. */
export async function deleteRule(ctx: DomainContext, ruleId: string) {
  const existing = await getRule(ctx, ruleId);
  return ctx.db.transaction(async (tx) => {
    await tx.delete(notificationRules).where(eq(notificationRules.id, existing.id));
    await recordAudit(tx, ctx.actor, {
      action: "notification_rule.delete",
      targetType: "notification_rule",
      targetId: existing.id,
      changes: { name: existing.name, channel: existing.channel },
    });
    return existing;
  });
}

/** A rule's channel settings in plaintext, for the task that sends a delivery. */
export async function ruleConfig(services: Services, row: RuleRow): Promise<ChannelConfig> {
  const cipher = await cipherFor(services.db, services.keyring, row.organizationId);
  return JSON.parse(cipher.decrypt(row.encryptedConfig, configContext(row.id))) as ChannelConfig;
}

/** A rule's latest deliveries, newest first, each with its attempts in order. */
export async function listRuleDeliveries(ctx: DomainContext, input: { ruleId: string; limit: number }) {
  const rule = await getRule(ctx, input.ruleId);
  const rows = await ctx.db
    .select()
    .from(notificationDeliveries)
    .where(eq(notificationDeliveries.ruleId, rule.id))
    .orderBy(desc(notificationDeliveries.createdAt))
    .limit(input.limit);
  const attempts = rows.length
    ? await ctx.db
        .select()
        .from(notificationAttempts)
        .where(
          inArray(
            notificationAttempts.deliveryId,
            rows.map((row) => row.id),
          ),
        )
        .orderBy(notificationAttempts.id)
    : [];
  return rows.map((row) => ({ ...row, attemptLog: attempts.filter((attempt) => attempt.deliveryId === row.id) }));
}

/** Sends a test delivery to the rule's channel (even a disabled rule's: checking it before enabling it is the point). */
export async function sendTestNotification(ctx: DomainContext, ruleId: string) {
  const rule = await getRule(ctx, ruleId);
  return ctx.db.transaction(async (tx) => {
    const deliveryId = await enqueueDelivery(
      tx,
      { organizationId: rule.organizationId, ruleId: rule.id },
      TEST_EVENT,
      { text: `A test of the notification rule ${rule.name}, sent by ${ctx.actor.label}` },
      ctx.now(),
    );
    await recordAudit(tx, ctx.actor, { action: "notification_rule.test", targetType: "notification_rule", targetId: rule.id, changes: { deliveryId } });
    return { deliveryId };
  });
}
