import { eq } from "drizzle-orm";
import { z } from "zod";
import { recordAudit } from "../audit/record-audit";
import type { Services } from "../context";
import { conflictOnDuplicate } from "../db/errors";
import type { Executor } from "../db/client";
import { memberships, users } from "../db/schema";
import { assertSignupOpen } from "../instance/settings";
import { hashPassword } from "./passwords";

/** What a newcomer gives to create an account: by signing up, or by accepting an invitation. */
export const newAccountInput = z.object({
  name: z.string().trim().min(1).max(100),
  email: z.string().email().max(320),
  password: z.string().min(10, "use at least 10 characters").max(1000),
});

export type SignedInUser = { id: string; email: string; name: string; instanceAdmin: boolean };

export async function findUser(db: Executor, userId: string): Promise<SignedInUser | null> {
  const [user] = await db
    .select({ id: users.id, email: users.email, name: users.name, instanceAdmin: users.instanceAdmin })
    .from(users)
    .where(eq(users.id, userId));
  return user ?? null;
}

/** The signed-in user as the dashboard needs them: whether they belong anywhere yet, and may change the instance. */
export async function accountOf({ db }: Services, user: SignedInUser) {
  const rows = await db.select({ organizationId: memberships.organizationId }).from(memberships).where(eq(memberships.userId, user.id));
  return { ...user, organizations: rows.length };
}

/**
 * Creates an account where the instance lets anyone sign up (server/instance/settings.ts); the
 * dashboard then signs in with the same email and password. The newcomer belongs to no
 * organization yet, so the event is the instance's, not an organization's.
 */
export async function signUp({ db }: Services, input: z.infer<typeof newAccountInput>, ip?: string) {
  const email = input.email.toLowerCase();
  const passwordHash = await hashPassword(input.password);
  return db.transaction(async (tx) => {
    await assertSignupOpen(tx);
    const [user] = await conflictOnDuplicate(`An account for ${email} (sign in instead)`, () =>
      tx.insert(users).values({ email, name: input.name, passwordHash }).returning({ id: users.id, email: users.email, name: users.name }),
    );
    const actor = { type: "user" as const, id: user!.id, label: email, organizationId: null, origin: "UI" as const, ip, userId: user!.id };
    await recordAudit(tx, actor, { action: "user.sign_up", targetType: "user", targetId: user!.id });
    return user!;
  });
}
