import { and, asc, eq, gt, inArray, isNull, sql } from "drizzle-orm";
import { z } from "zod";
import { assertRole, hasRole } from "../auth/actor";
import { recordAudit } from "../audit/record-audit";
import { issueToken } from "../auth/tokens";
import type { DomainContext } from "../context";
import type { Executor } from "../db/client";
import { invites, memberships, roles, users, type Role } from "../db/schema";
import { AppError, notFound } from "../errors";
import { revokeTokensOfMember } from "../tokens/api-tokens";

const INVITE_DAYS = 7;

export const inviteMemberInput = z.object({ role: z.enum(roles) });
export const changeRoleInput = z.object({ userId: z.string().uuid(), role: z.enum(roles) });

export async function listMembers({ db, actor }: DomainContext) {
  return db
    .select({ userId: users.id, email: users.email, name: users.name, role: memberships.role, joinedAt: memberships.createdAt })
    .from(memberships)
    .innerJoin(users, eq(users.id, memberships.userId))
    .where(eq(memberships.organizationId, actor.organizationId))
    .orderBy(asc(users.email));
}

/**
 * An invitation link, valid for a week; nobody can invite to a role above their own. The link
 * answers to the member who made it (through a token too, as tokens do): it works only while they
 * are a member with at least its role (accept-invite.ts), and dies when they leave.
 */
export async function inviteMember(ctx: DomainContext, input: z.infer<typeof inviteMemberInput>) {
  assertRole(ctx.actor, input.role);
  const createdById = ctx.actor.userId ?? (ctx.actor.type === "user" ? ctx.actor.id : null);
  if (!createdById) throw new AppError("FORBIDDEN", "Only a member, or a member's token, can invite");
  const issued = issueToken("invite");
  const expiresAt = new Date(ctx.now().getTime() + INVITE_DAYS * 24 * 3600 * 1000);
  return ctx.db.transaction(async (tx) => {
    const [invite] = await tx
      .insert(invites)
      .values({
        organizationId: ctx.actor.organizationId,
        role: input.role,
        tokenHash: issued.hash,
        createdById,
        expiresAt,
      })
      .returning();
    await recordAudit(tx, ctx.actor, { action: "member.invite", targetType: "invite", targetId: invite!.id, changes: { role: input.role } });
    return { invite: invite!, url: `${ctx.publicUrl}/invite/${issued.token}` };
  });
}

export async function listPendingInvites({ db, actor, now }: DomainContext) {
  return db
    .select()
    .from(invites)
    .where(and(eq(invites.organizationId, actor.organizationId), isNull(invites.acceptedAt), isNull(invites.revokedAt), gt(invites.expiresAt, now())))
    .orderBy(asc(invites.createdAt));
}

export async function revokeInvite(ctx: DomainContext, inviteId: string) {
  return ctx.db.transaction(async (tx) => {
    const [invite] = await tx
      .update(invites)
      .set({ revokedAt: ctx.now() })
      .where(and(eq(invites.id, inviteId), eq(invites.organizationId, ctx.actor.organizationId), isNull(invites.acceptedAt), isNull(invites.revokedAt)))
      .returning();
    if (!invite) throw notFound("Pending invitation");
    await recordAudit(tx, ctx.actor, { action: "member.revoke_invite", targetType: "invite", targetId: invite.id });
    return invite;
  });
}

/**
 * A member's pending invitations beyond the role they keep (all of them when they leave, null) are
 * revoked, as their tokens are (tokens/api-tokens.ts): a link never lets in more than its creator
 * may still grant. Runs in the change's transaction; each revocation is audited.
 */
async function revokeInvitesOfMember(tx: Executor, ctx: DomainContext, userId: string, roleKept: Role | null, reason: string): Promise<void> {
  const beyond = roles.filter((role) => roleKept === null || !hasRole({ role: roleKept }, role));
  if (beyond.length === 0) return;
  const revoked = await tx
    .update(invites)
    .set({ revokedAt: ctx.now() })
    .where(
      and(
        eq(invites.organizationId, ctx.actor.organizationId),
        eq(invites.createdById, userId),
        inArray(invites.role, beyond),
        isNull(invites.acceptedAt),
        isNull(invites.revokedAt),
        gt(invites.expiresAt, ctx.now()),
      ),
    )
    .returning({ id: invites.id, role: invites.role });
  for (const row of revoked) {
    await recordAudit(tx, ctx.actor, { action: "member.revoke_invite", targetType: "invite", targetId: row.id, changes: { role: row.role, reason } });
  }
}

async function membershipOf(db: Executor, organizationId: string, userId: string) {
  const [row] = await db
    .select({ role: memberships.role, email: users.email })
    .from(memberships)
    .innerJoin(users, eq(users.id, memberships.userId))
    .where(and(eq(memberships.organizationId, organizationId), eq(memberships.userId, userId)))
    .for("update", { of: memberships });
  if (!row) throw notFound("Member");
  return row;
}

/** An organization always keeps an owner; only owners make or unmake owners. */
async function assertOwnershipKept(db: Executor, ctx: DomainContext, current: Role, next: Role | null) {
  const touchesOwner = current === "OWNER" || next === "OWNER";
  if (touchesOwner && !hasRole(ctx.actor, "OWNER")) throw new AppError("FORBIDDEN", "Only an owner can grant or take away the OWNER role");
  if (current === "OWNER" && next !== "OWNER") {
    const [{ owners }] = (await db
      .select({ owners: sql<number>`count(*)::int` })
      .from(memberships)
      .where(and(eq(memberships.organizationId, ctx.actor.organizationId), eq(memberships.role, "OWNER")))) as [{ owners: number }];
    if (owners <= 1) throw new AppError("CONFLICT", "The organization needs at least one owner: make someone else an owner first");
  }
}

export async function changeMemberRole(ctx: DomainContext, input: z.infer<typeof changeRoleInput>) {
  return ctx.db.transaction(async (tx) => {
    const member = await membershipOf(tx, ctx.actor.organizationId, input.userId);
    await assertOwnershipKept(tx, ctx, member.role, input.role);
    await tx
      .update(memberships)
      .set({ role: input.role })
      .where(and(eq(memberships.organizationId, ctx.actor.organizationId), eq(memberships.userId, input.userId)));
    await recordAudit(tx, ctx.actor, {
      action: "member.change_role",
      targetType: "user",
      targetId: input.userId,
      changes: { before: { role: member.role }, after: { role: input.role }, email: member.email },
    });
    await revokeInvitesOfMember(tx, ctx, input.userId, input.role, `member's role changed to ${input.role}`);
    return { userId: input.userId, role: input.role };
  });
}

export async function removeMember(ctx: DomainContext, userId: string) {
  return ctx.db.transaction(async (tx) => {
    const member = await membershipOf(tx, ctx.actor.organizationId, userId);
    await assertOwnershipKept(tx, ctx, member.role, null);
    await tx.delete(memberships).where(and(eq(memberships.organizationId, ctx.actor.organizationId), eq(memberships.userId, userId)));
    await recordAudit(tx, ctx.actor, { action: "member.remove", targetType: "user", targetId: userId, changes: { email: member.email, role: member.role } });
    await revokeTokensOfMember(tx, ctx, userId, "member removed");
    await revokeInvitesOfMember(tx, ctx, userId, null, "member removed");
  });
}
