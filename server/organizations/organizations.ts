import { and, asc, eq, isNotNull } from "drizzle-orm";
import { z } from "zod";
import type { Actor } from "../auth/actor";
import type { SignedInUser } from "../auth/accounts";
import { issueToken } from "../auth/tokens";
import { recordAudit } from "../audit/record-audit";
import type { DomainContext, Services } from "../context";
import type { Executor } from "../db/client";
import { apiTokens, environments, memberships, organizations, users } from "../db/schema";
import { requestDeployment } from "../deployments/request-deployment";
import { AppError, notFound } from "../errors";
import { createOrganization } from "./create-organization";

export const organizationName = z.string().trim().min(1, "give the organization a name").max(100);
export const createOrganizationInput = z.object({
  name: organizationName,
  /**
   * Also issue an OWNER API token of the new organization for the caller, shown once: an API token
   * belongs to one organization, so the CLI needs one to act in the organization it just made.
   */
  issueToken: z.boolean().optional(),
});
export const renameOrganizationInput = z.object({ name: organizationName });
export const transferOrganizationInput = z.object({ email: z.string().email().max(320) });
/** The organization's name typed out, as the dashboard asks for it: a slip (or a wrong token) cannot delete. */
export const deleteOrganizationInput = z.object({ confirm: z.string().min(1).max(100) });

/** Whoever asks for something of their own, outside any one organization: a signed-in user, or their OWNER token. */
export type UserContext = Services & { user: SignedInUser; origin: Actor["origin"]; ip?: string };

/** A signed-in user creates an organization and is its OWNER. */
export async function createOrganizationForUser(ctx: UserContext, input: z.infer<typeof createOrganizationInput>) {
  return ctx.db.transaction(async (tx) => {
    const organization = await createOrganization(tx, ctx.keyring, { name: input.name });
    await tx.insert(memberships).values({ organizationId: organization.id, userId: ctx.user.id, role: "OWNER" });
    const owner: Actor = {
      type: "user",
      id: ctx.user.id,
      label: ctx.user.email,
      organizationId: organization.id,
      role: "OWNER",
      origin: ctx.origin,
      ip: ctx.ip,
      userId: ctx.user.id,
    };
    await recordAudit(tx, owner, { action: "organization.create", targetType: "organization", targetId: organization.id, changes: { name: input.name } });
    let token: string | null = null;
    if (input.issueToken) {
      const issued = issueToken("api");
      const name = `slipway CLI (created with the organization)`;
      const [row] = await tx
        .insert(apiTokens)
        .values({ organizationId: organization.id, createdById: ctx.user.id, name, role: "OWNER", tokenHash: issued.hash, prefix: issued.prefix })
        .returning({ id: apiTokens.id });
      await recordAudit(tx, owner, { action: "api_token.create", targetType: "api_token", targetId: row!.id, changes: { name, role: "OWNER" } });
      token = issued.token;
    }
    return { organization: { id: organization.id, name: organization.name, role: "OWNER" as const }, token };
  });
}

async function lockedOrganization(db: Executor, organizationId: string) {
  const [organization] = await db.select().from(organizations).where(eq(organizations.id, organizationId)).for("update");
  if (!organization) throw notFound("Organization");
  return organization;
}

export async function renameOrganization(ctx: DomainContext, input: z.infer<typeof renameOrganizationInput>) {
  return ctx.db.transaction(async (tx) => {
    const before = await lockedOrganization(tx, ctx.actor.organizationId);
    const [organization] = await tx.update(organizations).set({ name: input.name }).where(eq(organizations.id, before.id)).returning();
    await recordAudit(tx, ctx.actor, {
      action: "organization.rename",
      targetType: "organization",
      targetId: before.id,
      changes: { before: { name: before.name }, after: { name: input.name } },
    });
    return organization!;
  });
}

/** The member answering for the actor: a user, or the member who created the token. */
function memberIdOf(actor: Actor): string {
  const userId = actor.userId ?? (actor.type === "user" ? actor.id : null);
  if (!userId) throw new AppError("FORBIDDEN", "Only a member, or a member's token, can transfer an organization");
  return userId;
}

/** Hands the organization to another member, who becomes an OWNER; the caller stays on as an ADMIN. */
export async function transferOrganization(ctx: DomainContext, input: z.infer<typeof transferOrganizationInput>) {
  const fromId = memberIdOf(ctx.actor);
  return ctx.db.transaction(async (tx) => {
    await lockedOrganization(tx, ctx.actor.organizationId);
    const [to] = await tx
      .select({ userId: users.id, email: users.email, role: memberships.role })
      .from(memberships)
      .innerJoin(users, eq(users.id, memberships.userId))
      .where(and(eq(memberships.organizationId, ctx.actor.organizationId), eq(users.email, input.email.toLowerCase())));
    if (!to) throw new AppError("NOT_FOUND", `${input.email} is not a member of this organization: invite them first`);
    if (to.userId === fromId) throw new AppError("INVALID", "You own this organization already: name another member");
    const inOrganization = (userId: string) => and(eq(memberships.organizationId, ctx.actor.organizationId), eq(memberships.userId, userId));
    await tx.update(memberships).set({ role: "OWNER" }).where(inOrganization(to.userId));
    await tx.update(memberships).set({ role: "ADMIN" }).where(inOrganization(fromId));
    await recordAudit(tx, ctx.actor, {
      action: "organization.transfer",
      targetType: "user",
      targetId: to.userId,
      changes: { to: { email: to.email, before: to.role, after: "OWNER" }, from: { userId: fromId, before: "OWNER", after: "ADMIN" } },
    });
    return { owner: to.email, yourRole: "ADMIN" as const };
  });
}

/**
 * The instance's first organization holds the built-in `local` cluster that `npm start`'s engine
 * serves (server/bootstrap.ts), and the first boot makes it again when it is missing: it stays.
 */
async function assertNotFirstOrganization(db: Executor, organizationId: string) {
  const [first] = await db.select({ id: organizations.id }).from(organizations).orderBy(asc(organizations.createdAt)).limit(1);
  if (first?.id === organizationId) {
    throw new AppError("CONFLICT", "This is the instance's first organization, which holds its built-in local cluster: it cannot be deleted");
  }
}

/**
 * Deletes the organization as a project is deleted: each environment through an ordinary DELETE
 * deployment, which removes what runs and then the environment; when the last one finishes, the
 * organization goes with what is left (finishOrganizationDeletion). Asking again re-requests the
 * environments still there (after a failed DELETE, say).
 */
export async function deleteOrganization(ctx: DomainContext, input: z.infer<typeof deleteOrganizationInput>) {
  const remaining = await ctx.db.transaction(async (tx) => {
    const organization = await lockedOrganization(tx, ctx.actor.organizationId);
    if (input.confirm !== organization.name) throw new AppError("INVALID", `Type the organization's name, "${organization.name}", to confirm`);
    await assertNotFirstOrganization(tx, organization.id);
    await tx
      .update(organizations)
      .set({ deletingAt: organization.deletingAt ?? ctx.now() })
      .where(eq(organizations.id, organization.id));
    const rows = await tx
      .select({ id: environments.id, name: environments.name })
      .from(environments)
      .where(eq(environments.organizationId, organization.id))
      .orderBy(asc(environments.createdAt));
    await recordAudit(tx, ctx.actor, {
      action: "organization.delete",
      targetType: "organization",
      targetId: organization.id,
      changes: { name: organization.name, environments: rows.map((row) => row.name) },
    });
    return rows;
  });
  // Each request is its own transaction, as any deployment's; the organization stays marked, so
  // an interrupted deletion is finished by asking again.
  const deploymentIds: string[] = [];
  for (const environment of remaining) {
    const { deployment } = await requestDeployment(ctx, { environmentId: environment.id, action: "DELETE" });
    deploymentIds.push(deployment.id);
  }
  const deleted = remaining.length === 0 && (await ctx.db.transaction((tx) => finishOrganizationDeletion(tx, ctx.actor.organizationId)));
  return { status: deleted ? ("DELETED" as const) : ("DELETING" as const), deploymentIds };
}

/**
 * Removes an organization being deleted once no environment is left (its projects, clusters,
 * tokens and memberships go with it). Called by the deletion itself and whenever a DELETE
 * deployment removes an environment (server/deployments/events.ts); true when it went.
 */
export async function finishOrganizationDeletion(db: Executor, organizationId: string): Promise<boolean> {
  const [organization] = await db
    .select({ id: organizations.id, name: organizations.name })
    .from(organizations)
    .where(and(eq(organizations.id, organizationId), isNotNull(organizations.deletingAt)))
    .for("update");
  if (!organization) return false;
  const [left] = await db.select({ id: environments.id }).from(environments).where(eq(environments.organizationId, organizationId)).limit(1);
  if (left) return false;
  const slipway: Actor = { type: "system", id: null, label: "organization deletion", organizationId, role: "OWNER", origin: "SYSTEM" };
  // Kept after the row goes (audit_events.organization_id is set null), as the record that it went.
  await recordAudit(db, slipway, {
    action: "organization.deleted",
    targetType: "organization",
    targetId: organizationId,
    changes: { name: organization.name },
  });
  await db.delete(organizations).where(eq(organizations.id, organizationId));
  return true;
}
