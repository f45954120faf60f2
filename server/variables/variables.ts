import { and, asc, eq } from "drizzle-orm";
import { z } from "zod";
import { recordAudit, REDACTED } from "../audit/record-audit";
import type { DomainContext } from "../context";
import { variables, variableScopes, type VariableScope } from "../db/schema";
import { getEnvironment } from "../environments/environments";
import { AppError, notFound } from "../errors";
import { getProject } from "../projects/projects";
import { cipherFor } from "../secrets/organization-cipher";
import { getService } from "../services/services";

export const variableKey = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "use letters, digits and underscores, not starting with a digit")
  .refine((key) => !key.toUpperCase().startsWith("SLIPWAY_"), "SLIPWAY_ variables are built in and cannot be set");

export const variableTarget = z.object({ scope: z.enum(variableScopes), targetId: z.string().uuid() });

export const setVariableInput = variableTarget.extend({
  key: variableKey,
  value: z.string().max(64 * 1024),
  secret: z.boolean().default(false),
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

/** Variables of one scope. Secret values are never returned; plain ones are decrypted for display. */
export async function listVariables(ctx: DomainContext, target: z.infer<typeof variableTarget>) {
  await assertTarget(ctx, target);
  const rows = await ctx.db
    .select()
    .from(variables)
    .where(and(eq(variables.scope, target.scope), eq(variables.targetId, target.targetId), eq(variables.organizationId, ctx.actor.organizationId)))
    .orderBy(asc(variables.key));
  const cipher = await cipherFor(ctx.db, ctx.keyring, ctx.actor.organizationId);
  return rows.map((row) => ({
    id: row.id,
    scope: row.scope,
    targetId: row.targetId,
    key: row.key,
    secret: row.secret,
    value: row.secret ? null : cipher.decrypt(row.encryptedValue, variableContext(row.scope, row.targetId, row.key)),
    updatedAt: row.updatedAt,
  }));
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
    if (existing?.secret && !input.secret) {
      throw new AppError("CONFLICT", `${input.key} is a secret: unset it first to replace it with a plain variable`);
    }
    await tx
      .insert(variables)
      .values({ organizationId: ctx.actor.organizationId, scope: input.scope, targetId: input.targetId, key: input.key, encryptedValue, secret: input.secret })
      .onConflictDoUpdate({ target: [variables.scope, variables.targetId, variables.key], set: { encryptedValue, secret: input.secret, updatedAt: new Date() } });
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
