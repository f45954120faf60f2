import { parse as parseDotenv } from "dotenv";
import { and, asc, eq, inArray, type Placeholder, type SQL } from "drizzle-orm";
import { z } from "zod";
import { recordAudit, REDACTED } from "../audit/record-audit";
import type { DomainContext } from "../context";
import type { Executor } from "../db/client";
import { clusters, services, variables, variableScopes, type VariableScope } from "../db/schema";
import { serviceDomain } from "../services/domains";
import { getEnvironment } from "../environments/environments";
import { AppError, notFound } from "../errors";
import { getProject } from "../projects/projects";
import { cipherFor } from "../secrets/organization-cipher";
import { getService } from "../services/services";
import { databaseVariables } from "../services/databases";
import { builtInVariables, resolveVariables } from "./resolve";
import { jobOutputs, type JobRef } from "./job-outputs";
import { variableKey, variableValue } from "../input-schemas";

/**
 * The variables an environment owns and those of its services, as conditions on scope and target
 * (the leading columns of their unique index), within the organization. A caller adds other
 * scopes (a deployment's snapshot, its project's) and the organization's condition.
 */
export function environmentVariableScopes(db: Executor, organizationId: string | Placeholder, environmentId: string | Placeholder): SQL[] {
  const ofEnvironment = and(eq(services.environmentId, environmentId), eq(services.organizationId, organizationId));
  return [
    and(eq(variables.scope, "ENVIRONMENT"), eq(variables.targetId, environmentId))!,
    and(eq(variables.scope, "SERVICE"), inArray(variables.targetId, db.select({ id: services.id }).from(services).where(ofEnvironment)))!,
  ];
}

export const variableTarget = z.object({ scope: z.enum(variableScopes), targetId: z.string().uuid() });

export const setVariableInput = variableTarget.extend({
  key: variableKey,
  value: variableValue,
  secret: z.boolean().default(false),
  /**
   * What to do when the key is already set at this scope: replace its value (the default, as a
   * PUT does), or refuse with CONFLICT so that a form adding a variable asks before overwriting.
   */
  overwrite: z.boolean().default(true),
});

export const unsetVariableInput = variableTarget.extend({ key: z.string().min(1) });

/** The authenticated-data context a value is sealed with: a ciphertext cannot be moved to another variable. */
export function variableContext(scope: VariableScope, targetId: string, key: string): string {
  return `variable:${scope}:${targetId}:${key}`;
}

/** Checks that the scope's target exists in the caller's organization. */
export async function assertTarget(ctx: DomainContext, target: z.infer<typeof variableTarget>) {
  if (target.scope === "PROJECT") await getProject(ctx, target.targetId);
  else if (target.scope === "ENVIRONMENT") await getEnvironment(ctx, target.targetId);
  else await getService(ctx, target.targetId);
}

/**
 * The environment whose lifecycle jobs' outputs a scope's listing shows: an environment's own,
 * and a service's environment's (databases take none, engine/job-outputs.ts withOutputs).
 */
async function outputsReaching(ctx: DomainContext, target: z.infer<typeof variableTarget>): Promise<string | null> {
  if (target.scope === "ENVIRONMENT") return target.targetId;
  if (target.scope === "PROJECT") return null;
  const service = await getService(ctx, target.targetId);
  return service.kind === "DATABASE" ? null : service.environmentId;
}

/** Variables of one scope, then what lifecycle jobs output that reaches it. Secret values are never returned; plain ones are decrypted for display. */
export async function listVariables(ctx: DomainContext, target: z.infer<typeof variableTarget>) {
  await assertTarget(ctx, target);
  const rows = await ctx.db
    .select()
    .from(variables)
    .where(and(eq(variables.scope, target.scope), eq(variables.targetId, target.targetId), eq(variables.organizationId, ctx.actor.organizationId)))
    .orderBy(asc(variables.key));
  const cipher = await cipherFor(ctx.db, ctx.keyring, ctx.actor.organizationId);
  const set = rows.map((row) => ({
    scope: row.scope,
    targetId: row.targetId,
    key: row.key,
    secret: row.secret,
    value: row.secret ? null : cipher.decrypt(row.encryptedValue, variableContext(row.scope, row.targetId, row.key)),
    job: null as JobRef | null,
  }));
  const environmentId = await outputsReaching(ctx, target);
  if (!environmentId) return set;
  // What the environment's lifecycle jobs output reaches its services (over what users set, being newer): listed with the scope's variables, read-only.
  const outputs = (await jobOutputs(ctx.db, environmentId)).map(({ key, job }) => ({
    scope: target.scope,
    targetId: target.targetId,
    key,
    secret: false,
    value: null,
    job: job as JobRef | null,
  }));
  return [...set, ...outputs];
}

export async function setVariable(ctx: DomainContext, input: z.infer<typeof setVariableInput>) {
  await assertTarget(ctx, input);
  const cipher = await cipherFor(ctx.db, ctx.keyring, ctx.actor.organizationId);
  const encryptedValue = cipher.encrypt(input.value, variableContext(input.scope, input.targetId, input.key));
  return ctx.db.transaction(async (tx) => {
    const [existing] = await tx
      .select({ secret: variables.secret })
      .from(variables)
      .where(and(eq(variables.scope, input.scope), eq(variables.targetId, input.targetId), eq(variables.key, input.key)));
    if (existing && !input.overwrite) {
      throw new AppError("CONFLICT", `${input.key} is already set on this ${input.scope.toLowerCase()}: overwrite it, or choose another key`);
    }
    if (existing?.secret && !input.secret) {
      throw new AppError("CONFLICT", `${input.key} is a secret: unset it first to replace it with a plain variable`);
    }
    await tx
      .insert(variables)
      .values({ organizationId: ctx.actor.organizationId, scope: input.scope, targetId: input.targetId, key: input.key, encryptedValue, secret: input.secret })
      .onConflictDoUpdate({
        target: [variables.scope, variables.targetId, variables.key],
        set: { encryptedValue, secret: input.secret, updatedAt: new Date() },
      });
    await recordAudit(tx, ctx.actor, {
      action: existing ? "variable.update" : "variable.create",
      targetType: "variable",
      targetId: `${input.scope}:${input.targetId}:${input.key}`,
      changes: { key: input.key, scope: input.scope, secret: input.secret, value: input.secret ? REDACTED : input.value },
    });
    return { key: input.key, scope: input.scope, targetId: input.targetId, secret: input.secret };
  });
}

export async function unsetVariable(ctx: DomainContext, input: z.infer<typeof unsetVariableInput>) {
  await assertTarget(ctx, input);
  return ctx.db.transaction(async (tx) => {
    const deleted = await tx
      .delete(variables)
      .where(
        and(
          eq(variables.scope, input.scope),
          eq(variables.targetId, input.targetId),
          eq(variables.key, input.key),
          eq(variables.organizationId, ctx.actor.organizationId),
        ),
      )
      .returning({ id: variables.id });
    if (deleted.length === 0) throw notFound(`Variable ${input.key}`);
    await recordAudit(tx, ctx.actor, {
      action: "variable.delete",
      targetType: "variable",
      targetId: `${input.scope}:${input.targetId}:${input.key}`,
      changes: { key: input.key, scope: input.scope },
    });
  });
}

export const importVariablesInput = variableTarget.extend({
  /** The text of a `.env` file. */
  content: z.string().max(512 * 1024),
  secret: z.boolean().default(false),
});

/**
 * Sets every variable of a `.env` file at one scope, all or nothing: one invalid name or value
 * (the rules of a single set: a value over the limit would fail every start of the service)
 * rejects the whole file with every problem named by its line, and nothing is written.
 */
export async function importVariables(ctx: DomainContext, input: z.infer<typeof importVariablesInput>) {
  await assertTarget(ctx, input);
  const entries = Object.entries(parseDotenv(input.content));
  if (entries.length === 0) throw new AppError("INVALID", "The file has no KEY=value lines");
  const problems = entries.flatMap(([key, value]) => {
    const where = `line ${lineOf(input.content, key)}, ${key}`;
    const name = variableKey.safeParse(key);
    if (!name.success) return [`${where}: ${name.error.issues[0]?.message}`];
    const checked = variableValue.safeParse(value);
    return checked.success ? [] : [`${where}: the value has ${value.length} characters: ${checked.error.issues[0]?.message}`];
  });
  if (problems.length > 0) throw new AppError("INVALID", `Nothing imported. Invalid lines: ${problems.join("; ")}`);
  const cipher = await cipherFor(ctx.db, ctx.keyring, ctx.actor.organizationId);
  return ctx.db.transaction(async (tx) => {
    const existingSecrets = await tx
      .select({ key: variables.key })
      .from(variables)
      .where(and(eq(variables.scope, input.scope), eq(variables.targetId, input.targetId), eq(variables.secret, true)));
    const clash = existingSecrets.map((row) => row.key).filter((key) => !input.secret && entries.some(([k]) => k === key));
    if (clash.length > 0)
      throw new AppError("CONFLICT", `Nothing imported: ${clash.join(", ")} ${clash.length === 1 ? "is a secret" : "are secrets"}; import them as secrets`);
    for (const [key, value] of entries) {
      const encryptedValue = cipher.encrypt(value, variableContext(input.scope, input.targetId, key));
      await tx
        .insert(variables)
        .values({ organizationId: ctx.actor.organizationId, scope: input.scope, targetId: input.targetId, key, encryptedValue, secret: input.secret })
        .onConflictDoUpdate({
          target: [variables.scope, variables.targetId, variables.key],
          set: { encryptedValue, secret: input.secret, updatedAt: new Date() },
        });
    }
    const keys = entries.map(([key]) => key);
    await recordAudit(tx, ctx.actor, {
      action: "variable.import",
      targetType: "variable",
      targetId: `${input.scope}:${input.targetId}`,
      changes: { scope: input.scope, secret: input.secret, values: Object.fromEntries(entries.map(([k, v]) => [k, input.secret ? REDACTED : v])) },
    });
    return { imported: keys.length, keys };
  });
}

/**
 * The line of a `.env` file that sets `key`: the last one that does, as dotenv keeps the last
 * (its line syntax: an optional `export`, then `KEY=` or `KEY: `).
 */
function lineOf(content: string, key: string): number {
  const lines = content.replace(/\r\n?/g, "\n").split("\n");
  const escaped = key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const setting = new RegExp(`^\\s*(?:export\\s+)?${escaped}(?:\\s*=|:\\s)`);
  return lines.findLastIndex((line) => setting.test(line)) + 1;
}

/** What a service will receive, with where each value comes from. Secret values stay hidden. */
export async function effectiveVariables(ctx: DomainContext, serviceId: string) {
  const service = await getService(ctx, serviceId);
  const environment = await getEnvironment(ctx, service.environmentId);
  const project = await getProject(ctx, environment.projectId);
  const [cluster] = await ctx.db
    .select({ domainSuffix: clusters.domainSuffix, kind: clusters.kind })
    .from(clusters)
    .where(eq(clusters.id, environment.clusterId));
  const stored = await ctx.db
    .select()
    .from(variables)
    .where(and(eq(variables.organizationId, ctx.actor.organizationId), inArray(variables.targetId, [project.id, environment.id, service.id])));
  const cipher = await cipherFor(ctx.db, ctx.keyring, ctx.actor.organizationId);
  const plain = stored.map((v) => ({ ...v, value: v.secret ? "" : cipher.decrypt(v.encryptedValue, variableContext(v.scope, v.targetId, v.key)) }));
  const domain = serviceDomain(service.name, environment.name, project.name, cluster?.domainSuffix ?? "localhost");
  const builtIn = builtInVariables({
    project: project.name,
    environment: environment.name,
    mode: environment.mode,
    service: service.name,
    serviceId: service.id,
    domain,
  });
  const databases = await databaseVariables(ctx.db, cipher, environment.id, cluster?.kind ?? "local");
  // Databases take no variables from jobs (engine/job-outputs.ts withOutputs).
  const outputs = service.kind === "DATABASE" ? [] : await jobOutputs(ctx.db, environment.id);
  return resolveVariables(
    plain,
    { projectId: project.id, environmentId: environment.id, serviceId: service.id },
    { ...builtIn, ...databases.values },
    databases.secretKeys,
    outputs,
  ).map((variable) => ({
    ...variable,
    value: variable.secret || variable.source === "JOB" ? null : variable.value,
  }));
}
