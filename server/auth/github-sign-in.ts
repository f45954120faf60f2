import { eq, sql } from "drizzle-orm";
import { recordAudit } from "../audit/record-audit";
import type { Services } from "../context";
import type { Executor } from "../db/client";
import { memberships, users } from "../db/schema";
import { assertSignupOpen } from "../instance/settings";
import { ACCESS_CHANNEL } from "../realtime/access-channel";
import { revokeTokensOfMember } from "../tokens/api-tokens";

/**
 * The Slipway account a GitHub sign-in opens: the one with the address GitHub verified as the
 * account's primary one (github.ts), created on a first sign-in where anyone may sign up.
 *
 * Nothing verifies the address of an account made with a password (sign-up, an invitation, the
 * first boot's admin): whoever signed up first as someone's address holds its password. So the
 * address's verified owner wins (pre-account hijacking, https://arxiv.org/abs/2205.10174): a
 * GitHub sign-in to an account with a password removes the password, which ends every session
 * signed in with it (session-stamp.ts), revokes the API tokens made under it (a session lasts a
 * week, a token until revoked), and is audited. From then on the account signs in with
 * GitHub only. An account without a password was made by a GitHub sign-in, so its address is
 * already verified and it opens as it is.
 */
export async function accountForGitHub(services: Services, email: string, name: string): Promise<string> {
  const address = email.toLowerCase();
  return services.db.transaction(async (tx) => {
    // A sign-up or an invitation may create the address between the lookup and the insert: look again.
    const account = (await lockedAccount(tx, address)) ?? (await newAccount(tx, address, name)) ?? (await lockedAccount(tx, address));
    if (!account) throw new Error(`the account of ${address} was neither found nor created`);
    if (account.passwordHash !== null) await takeOver(tx, services, account);
    return account.id;
  });
}

type Account = { id: string; email: string; passwordHash: string | null };

async function lockedAccount(tx: Executor, email: string): Promise<Account | undefined> {
  const [account] = await tx
    .select({ id: users.id, email: users.email, passwordHash: users.passwordHash })
    .from(users)
    .where(eq(users.email, email))
    .for("update");
  return account;
}

/** A first sign-in creates an account: only where anyone may sign up (server/instance/settings.ts). */
async function newAccount(tx: Executor, email: string, name: string): Promise<Account | undefined> {
  await assertSignupOpen(tx);
  const [created] = await tx
    .insert(users)
    .values({ email, name })
    .onConflictDoNothing()
    .returning({ id: users.id, email: users.email, passwordHash: users.passwordHash });
  return created;
}

/**
 * Removes the password and records it for the instance and in each organization the account
 * belongs to, where its admins see it (an account shared before this rule may have acted there).
 * Every token the account made is revoked: whoever held the password could have made one, and
 * the owner cannot tell theirs from the other's. The organizations' web processes are told (at
 * commit): the live connections the ended sessions and tokens hold (live logs, shells) end with
 * them, not only their next page load or reconnect.
 */
async function takeOver(tx: Executor, services: Services, account: Account): Promise<void> {
  await tx.update(users).set({ passwordHash: null }).where(eq(users.id, account.id));
  const organizations = await tx.select({ id: memberships.organizationId }).from(memberships).where(eq(memberships.userId, account.id));
  for (const organizationId of [null, ...organizations.map((organization) => organization.id)]) {
    const actor = { type: "user" as const, id: account.id, label: account.email, organizationId, origin: "UI" as const, userId: account.id };
    await recordAudit(tx, actor, {
      action: "user.github_takeover",
      targetType: "user",
      targetId: account.id,
      changes: { password: "removed", sessions: "ended", apiTokens: "revoked", by: "a GitHub sign-in with this verified address" },
    });
    if (organizationId === null) continue;
    await revokeTokensOfMember(tx, { now: services.now, actor: { ...actor, organizationId } }, account.id, "the account was taken over by a GitHub sign-in");
    await tx.execute(sql`select pg_notify(${ACCESS_CHANNEL}, ${organizationId})`);
  }
}
