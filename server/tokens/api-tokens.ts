import { and, desc, eq, isNull } from "drizzle-orm";
import { z } from "zod";
import { assertRole } from "../auth/actor";
import { recordAudit } from "../audit/record-audit";
import { hashToken, issueToken } from "../auth/tokens";
import type { Actor } from "../auth/actor";
import type { DomainContext, Services } from "../context";
import { apiTokens, roles } from "../db/schema";
import { AppError, notFound } from "../errors";

export const createApiTokenInput = z.object({ name: z.string().min(1).max(100), role: z.enum(roles) });

export async function listApiTokens({ db, actor }: DomainContext) {
  return db.select().from(apiTokens).where(eq(apiTokens.organizationId, actor.organizationId)).orderBy(desc(apiTokens.createdAt));
}

/** The token is returned once; a token can never carry more rights than its creator. */
export async function createApiToken(ctx: DomainContext, input: z.infer<typeof createApiTokenInput>) {
  assertRole(ctx.actor, input.role);
  const issued = issueToken("api");
  return ctx.db.transaction(async (tx) => {
    const [row] = await tx
      .insert(apiTokens)
      .values({
        organizationId: ctx.actor.organizationId,
        createdById: ctx.actor.type === "user" ? ctx.actor.id : null,
        name: input.name,
        role: input.role,
        tokenHash: issued.hash,
        prefix: issued.prefix,
      })
      .returning();
    await recordAudit(tx, ctx.actor, { action: "api_token.create", targetType: "api_token", targetId: row!.id, changes: input });
    return { token: issued.token, apiToken: row! };
  });
}

export async function revokeApiToken(ctx: DomainContext, tokenId: string) {
  return ctx.db.transaction(async (tx) => {
    const [row] = await tx
      .update(apiTokens)
      .set({ revokedAt: ctx.now() })
      .where(and(eq(apiTokens.id, tokenId), eq(apiTokens.organizationId, ctx.actor.organizationId), isNull(apiTokens.revokedAt)))
      .returning();
    if (!row) throw notFound("Active API token");
    await recordAudit(tx, ctx.actor, { action: "api_token.revoke", targetType: "api_token", targetId: row.id, changes: { name: row.name } });
    return row;
  });
}

/** The actor an API token stands for, or UNAUTHORIZED. */
export async function authenticateApiToken({ db, now }: Services, token: string, origin: Actor["origin"], ip?: string): Promise<Actor> {
  const [row] = await db
    .update(apiTokens)
    .set({ lastUsedAt: now() })
    .where(and(eq(apiTokens.tokenHash, hashToken(token)), isNull(apiTokens.revokedAt)))
    .returning();
  if (!row) throw new AppError("UNAUTHORIZED", "Unknown or revoked API token");
  return { type: "token", id: row.id, label: `token:${row.name}`, organizationId: row.organizationId, role: row.role, origin, ip };
}
