import { and, asc, eq, gt, isNull, sql } from "drizzle-orm";
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

/** An invitation link, valid for a week; nobody can invite to a role above their own. */
export async function inviteMember(ctx: DomainContext, input: z.infer<typeof inviteMemberInput>) {
  assertRole(ctx.actor, input.role);
  const issued = issueToken("invite");
  const expiresAt = new Date(ctx.now().getTime() + INVITE_DAYS * 24 * 3600 * 1000);
  return ctx.db.transaction(async (tx) => {
    const [invite] = await tx
      .insert(invites)
      .values({
        organizationId: ctx.actor.organizationId,
        role: input.role,
        tokenHash: issued.hash,
        createdById: ctx.actor.type === "user" ? ctx.actor.id : null,
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
  });
}
