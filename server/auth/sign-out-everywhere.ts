import { eq, sql } from "drizzle-orm";
import { recordAudit } from "../audit/record-audit";
import type { Services } from "../context";
import { memberships, users, type Origin } from "../db/schema";
import { ACCESS_CHANNEL } from "../realtime/access-channel";
import type { SignedInUser } from "./accounts";

/** Who asks: the signed-in user (a browser session, or an OWNER token acting for its creator). */
export type SigningOut = { user: SignedInUser; origin: Origin; ip?: string };

/**
 * Ends every browser session of the account, on every device, this one included: its session
 * generation is raised, which no session signed in before carries in its stamp
 * (session-stamp.ts), so each of them is refused from its next request, page or connection.
 * API tokens are not sessions and stay (settings/tokens revokes them). Recorded for the instance
 * and in each organization the account belongs to, whose web processes are told (at commit) so
 * that the sessions' live connections (logs, shells) end at once, as a GitHub takeover does.
 */
export async function signOutEverywhere({ db }: Services, { user, origin, ip }: SigningOut): Promise<{ endedAt: Date }> {
  return db.transaction(async (tx) => {
    const [raised] = await tx
      .update(users)
      .set({ sessionGeneration: sql`${users.sessionGeneration} + 1` })
      .where(eq(users.id, user.id))
      .returning({ endedAt: users.updatedAt });
    if (!raised) throw new Error(`the account ${user.id} signing out everywhere is gone`);
    const organizations = await tx.select({ id: memberships.organizationId }).from(memberships).where(eq(memberships.userId, user.id));
    for (const organizationId of [null, ...organizations.map((organization) => organization.id)]) {
      const actor = { type: "user" as const, id: user.id, label: user.email, organizationId, origin, ip, userId: user.id };
      await recordAudit(tx, actor, { action: "user.sign_out_everywhere", targetType: "user", targetId: user.id, changes: { sessions: "ended" } });
      if (organizationId !== null) await tx.execute(sql`select pg_notify(${ACCESS_CHANNEL}, ${organizationId})`);
    }
    return raised;
  });
}
