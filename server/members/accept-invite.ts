import { and, eq, gt, isNull } from "drizzle-orm";
import { z } from "zod";
import { hasRole, type Actor } from "../auth/actor";
import { recordAudit } from "../audit/record-audit";
import { newAccountInput } from "../auth/accounts";
import { hashPassword } from "../auth/passwords";
import { hashToken } from "../auth/tokens";
import type { Services } from "../context";
import type { Executor } from "../db/client";
import { conflictOnDuplicate } from "../db/errors";
import { invites, memberships, organizations, users } from "../db/schema";
import { AppError } from "../errors";

export const previewInviteInput = z.object({ token: z.string().min(1).max(200) });

/** A signed-in user accepts with the token alone; a newcomer also creates their account. */
export const acceptInviteInput = newAccountInput.partial().extend({ token: z.string().min(1).max(200) });

/** The membership of an invitation's creator in the invitation's organization. */
const creatorMembership = and(eq(memberships.organizationId, invites.organizationId), eq(memberships.userId, invites.createdById));

/**
 * A pending invitation, checked against its creator's current membership as a token is
 * (tokens/api-tokens.ts): one whose creator left, lost the role it grants, or is unknown lets
 * nobody in. Leaving and demotion revoke such links too (members.ts); this also covers a role
 * lowered elsewhere (an ownership transfer) and links made before that rule.
 */
async function openInvite(db: Executor, token: string, now: Date, forUpdate: boolean) {
  const query = db
    .select({ invite: invites, organizationName: organizations.name, creatorRole: memberships.role })
    .from(invites)
    .innerJoin(organizations, eq(organizations.id, invites.organizationId))
    .leftJoin(memberships, creatorMembership)
    .where(and(eq(invites.tokenHash, hashToken(token)), isNull(invites.acceptedAt), isNull(invites.revokedAt), gt(invites.expiresAt, now)));
  const [row] = forUpdate ? await query.for("update", { of: invites }) : await query;
  if (!row) throw new AppError("NOT_FOUND", "This invitation has expired, was revoked or was already used: ask for a new link");
  if (!row.creatorRole || !hasRole({ role: row.creatorRole }, row.invite.role)) {
    throw new AppError(
      "FORBIDDEN",
      `This invitation is no longer valid: whoever sent it has left ${row.organizationName} or may no longer grant the ${row.invite.role} role. Ask a member for a new link`,
    );
  }
  return { invite: row.invite, organizationName: row.organizationName };
}

export async function previewInvite({ db, now }: Services, token: string) {
  const { invite, organizationName } = await openInvite(db, token, now(), false);
  return { organizationName, role: invite.role, expiresAt: invite.expiresAt };
}

export async function acceptInvite(services: Services, signedIn: Actor | null, input: z.infer<typeof acceptInviteInput>) {
  const { db, now } = services;
  const passwordHash = signedIn?.type === "user" ? null : input.password ? await hashPassword(input.password) : null;
  return db.transaction(async (tx) => {
    const { invite, organizationName } = await openInvite(tx, input.token, now(), true);
    let userId: string;
    let label: string;
    if (signedIn?.type === "user" && signedIn.id) {
      userId = signedIn.id;
      label = signedIn.label;
    } else {
      if (!input.name || !input.email || !passwordHash)
        throw new AppError("INVALID", "Give your name, email and a password to create your account, or sign in first");
      const email = input.email.toLowerCase();
      const [user] = await conflictOnDuplicate(`An account for ${email} (sign in, then open the link again)`, () =>
        tx.insert(users).values({ email, name: input.name!, passwordHash }).returning(),
      );
      userId = user!.id;
      label = email;
    }
    await conflictOnDuplicate(`Your membership of ${organizationName}`, () =>
      tx.insert(memberships).values({ organizationId: invite.organizationId, userId, role: invite.role }),
    );
    await tx.update(invites).set({ acceptedAt: now(), acceptedById: userId }).where(eq(invites.id, invite.id));
    const actor: Actor = { type: "user", id: userId, label, organizationId: invite.organizationId, role: invite.role, origin: "UI" };
    await recordAudit(tx, actor, { action: "member.join", targetType: "invite", targetId: invite.id, changes: { role: invite.role } });
    return { organizationId: invite.organizationId, organizationName, role: invite.role };
  });
}
