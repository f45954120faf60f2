import { z } from "zod";
import { recordAudit, type AuditActor } from "../audit/record-audit";
import type { Executor } from "../db/client";
import { instanceSettings, signupModes } from "../db/schema";
import { AppError } from "../errors";

/**
 * Settings of the whole instance, above organizations. Only instance admins change them: the
 * first boot's admin is one (server/bootstrap.ts). Without a row, the defaults apply: sign-up by
 * invitation only, as an installation was before the setting existed.
 */
export const instanceSettingsInput = z.object({ signup: z.enum(signupModes) });
export type InstanceSettings = z.infer<typeof instanceSettingsInput>;

const DEFAULTS: InstanceSettings = { signup: "INVITE_ONLY" };

export async function readInstanceSettings(db: Executor): Promise<InstanceSettings> {
  const [row] = await db.select({ signup: instanceSettings.signup }).from(instanceSettings);
  return row ?? DEFAULTS;
}

/** Refuses to create an account unless anyone may sign up; invitations create theirs regardless. */
export async function assertSignupOpen(db: Executor): Promise<void> {
  const { signup } = await readInstanceSettings(db);
  if (signup !== "OPEN") throw new AppError("FORBIDDEN", "Sign-up is by invitation only on this instance: ask a member for an invitation link");
}

export async function updateInstanceSettings(db: Executor, admin: AuditActor & { id: string }, input: InstanceSettings): Promise<InstanceSettings> {
  return db.transaction(async (tx) => {
    const before = await readInstanceSettings(tx);
    const values = { signup: input.signup, updatedById: admin.id };
    await tx.insert(instanceSettings).values(values).onConflictDoUpdate({ target: instanceSettings.singleton, set: values });
    await recordAudit(tx, admin, { action: "instance.update_settings", targetType: "instance", changes: { before, after: input } });
    return readInstanceSettings(tx);
  });
}
