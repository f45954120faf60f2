import { and, desc, eq, isNull } from "drizzle-orm";
import { z } from "zod";
import { assertRole, hasRole, lowerRole } from "../auth/actor";
import { recordAudit, type AuditActor } from "../audit/record-audit";
import { hashToken, issueToken } from "../auth/tokens";
import type { Actor } from "../auth/actor";
import type { DomainContext, Services } from "../context";
import type { Executor } from "../db/client";
import { apiTokens, memberships, roles } from "../db/schema";
import { AppError, notFound } from "../errors";

/** The membership of a token's creator in the token's organization. */
const creatorMembership = and(eq(memberships.organizationId, apiTokens.organizationId), eq(memberships.userId, apiTokens.createdById));
/**
 * The condition of a live token: not revoked, and its creator still a member of its organization
 * (a token whose creator is unknown answers to nobody and is refused).
 */
const liveToken = (tokenHash: string) => and(eq(apiTokens.tokenHash, tokenHash), isNull(apiTokens.revokedAt), creatorMembership);

export const createApiTokenInput = z.object({ name: z.string().min(1).max(100), role: z.enum(roles) });

export async function listApiTokens({ db, actor }: DomainContext) {
  return db.select().from(apiTokens).where(eq(apiTokens.organizationId, actor.organizationId)).orderBy(desc(apiTokens.createdAt));
}

/**
 * The token is returned once; a token can never carry more rights than its creator. A token made
 * by a token belongs to the member behind that one, so it ends with the same membership.
 */
export async function createApiToken(ctx: DomainContext, input: z.infer<typeof createApiTokenInput>) {
  assertRole(ctx.actor, input.role);
  const createdById = ctx.actor.userId ?? (ctx.actor.type === "user" ? ctx.actor.id : null);
  if (!createdById) throw new AppError("FORBIDDEN", "Only a member, or a member's token, can create API tokens");
  const issued = issueToken("api");
  return ctx.db.transaction(async (tx) => {
    const [row] = await tx
      .insert(apiTokens)
      .values({
        organizationId: ctx.actor.organizationId,
        createdById,
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

/** Revoking a member's token takes a role at least the member's: an ADMIN cannot revoke an OWNER's tokens. */
export async function revokeApiToken(ctx: DomainContext, tokenId: string) {
  return ctx.db.transaction(async (tx) => {
    const [found] = await tx
      .select({ id: apiTokens.id, creatorRole: memberships.role })
      .from(apiTokens)
      .leftJoin(memberships, creatorMembership)
      .where(and(eq(apiTokens.id, tokenId), eq(apiTokens.organizationId, ctx.actor.organizationId), isNull(apiTokens.revokedAt)))
      .for("update", { of: apiTokens });
    if (!found) throw notFound("Active API token");
    if (found.creatorRole && !hasRole(ctx.actor, found.creatorRole)) {
      throw new AppError("FORBIDDEN", `This token belongs to a member with the ${found.creatorRole} role: revoking it needs that role or higher`);
    }
    const [row] = await tx.update(apiTokens).set({ revokedAt: ctx.now() }).where(eq(apiTokens.id, found.id)).returning();
    await recordAudit(tx, ctx.actor, { action: "api_token.revoke", targetType: "api_token", targetId: row!.id, changes: { name: row!.name } });
    return row!;
  });
}

/** Who revokes a member's tokens, and when: another member removing them, or their own GitHub sign-in taking the account over. */
type RevocationContext = Pick<Services, "now"> & { actor: AuditActor & { organizationId: string } };

/**
 * A member leaves, or their account is taken over: their tokens in the actor's organization die,
 * for good (being invited again gives new access, not the old tokens back). Runs in the caller's
 * transaction; each revocation is audited.
 */
export async function revokeTokensOfMember(tx: Executor, ctx: RevocationContext, userId: string, reason: string): Promise<void> {
  const revoked = await tx
    .update(apiTokens)
    .set({ revokedAt: ctx.now() })
    .where(and(eq(apiTokens.organizationId, ctx.actor.organizationId), eq(apiTokens.createdById, userId), isNull(apiTokens.revokedAt)))
    .returning({ id: apiTokens.id, name: apiTokens.name });
  for (const row of revoked) {
    await recordAudit(tx, ctx.actor, { action: "api_token.revoke", targetType: "api_token", targetId: row.id, changes: { name: row.name, reason } });
  }
}

type LiveToken = { id: string; name: string; organizationId: string; role: Actor["role"]; creatorRole: Actor["role"]; createdById: string | null };

/** How a token's actor is labelled (audit, deployment history): what tells a token from a member there. */
export const TOKEN_LABEL_PREFIX = "token:";

/** A token acts with the lower of its own role and its creator's current one. */
function tokenActor(row: LiveToken, origin: Actor["origin"], ip: string | undefined): Actor {
  return {
    type: "token",
    id: row.id,
    label: `${TOKEN_LABEL_PREFIX}${row.name}`,
    organizationId: row.organizationId,
    role: lowerRole(row.role, row.creatorRole),
    origin,
    ip,
    userId: row.createdById ?? undefined,
  };
}

const liveTokenColumns = {
  id: apiTokens.id,
  name: apiTokens.name,
  organizationId: apiTokens.organizationId,
  role: apiTokens.role,
  creatorRole: memberships.role,
  createdById: apiTokens.createdById,
};

/** The actor an API token stands for, or UNAUTHORIZED; records its use. */
export async function authenticateApiToken({ db, now }: Services, token: string, origin: Actor["origin"], ip?: string): Promise<Actor> {
  const [row] = await db
    .update(apiTokens)
    .set({ lastUsedAt: now() })
    .from(memberships)
    .where(liveToken(hashToken(token)))
    .returning(liveTokenColumns);
  if (!row) throw new AppError("UNAUTHORIZED", "Unknown or revoked API token");
  return tokenActor(row, origin, ip);
}

/** What a token (by its hash) may do now, or null once it is dead: long-lived connections re-check with it. */
export async function currentTokenActor({ db }: Services, tokenHash: string, origin: Actor["origin"], ip?: string): Promise<Actor | null> {
  const [row] = await db.select(liveTokenColumns).from(apiTokens).innerJoin(memberships, creatorMembership).where(liveToken(tokenHash));
  return row ? tokenActor(row, origin, ip) : null;
}
