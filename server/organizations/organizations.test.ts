import { TRPCError } from "@trpc/server";
import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { createCaller } from "../api/root";
import type { Actor } from "../auth/actor";
import type { Services } from "../context";
import { auditEvents, deployments, memberships, organizations, users } from "../db/schema";
import { appendEngineEvents } from "../deployments/events";
import { authenticateApiToken } from "../tokens/api-tokens";

let services: Services;
/** Seeded first: the instance's first organization, which holds the built-in local cluster. */
let first: SeededOrganization;

beforeAll(async () => {
  services = testServices((await createTestDatabase()).db);
  first = await seedOrganization(services, "first");
});

const as = (actor: Actor | null, sessionUserId?: string) => createCaller({ services, actor, sessionUserId });

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "OK";
  } catch (error) {
    if (error instanceof TRPCError) return error.code;
    throw error;
  }
}

/** A user who belongs to no organization, signed in (a browser session without an actor). */
async function newcomer(email: string) {
  const [user] = await services.db.insert(users).values({ email, name: email }).returning();
  return user!;
}

async function actionsOf(organizationId: string) {
  const rows = await services.db.select({ action: auditEvents.action }).from(auditEvents).where(eq(auditEvents.organizationId, organizationId));
  return rows.map((row) => row.action);
}

describe("creating an organization", () => {
  it("lets a signed-in user without an organization create one, as its OWNER", async () => {
    const user = await newcomer("newcomer@example.test");
    expect(await as(null, user.id).instance.account({})).toMatchObject({ email: "newcomer@example.test", organizations: 0, instanceAdmin: false });
    const { organization, token } = await as(null, user.id).organizations.create({ name: "Newcomer's team" });
    expect(organization).toMatchObject({ name: "Newcomer's team", role: "OWNER" });
    expect(token).toBeNull();
    const [membership] = await services.db.select().from(memberships).where(eq(memberships.organizationId, organization.id));
    expect(membership).toMatchObject({ userId: user.id, role: "OWNER" });
    expect(await actionsOf(organization.id)).toEqual(["organization.create"]);
    // Every organization has its own data key: secrets work in it from the start.
    const actor: Actor = { type: "user", id: user.id, label: user.email, organizationId: organization.id, role: "OWNER", origin: "UI", userId: user.id };
    const project = await as(actor).projects.create({ name: "first-project" });
    await as(actor).variables.set({ scope: "PROJECT", targetId: project.id, key: "API_KEY", value: "s3cret", secret: true });
  });

  it("gives the CLI an OWNER token of the new organization when asked, and refuses narrower tokens and strangers", async () => {
    const owner = await authenticateApiToken(services, await first.apiToken("OWNER"), "CLI");
    const { organization, token } = await as(owner).organizations.create({ name: "from-the-cli", issueToken: true });
    const inNew = await authenticateApiToken(services, token!, "CLI");
    expect(inNew).toMatchObject({ organizationId: organization.id, role: "OWNER", userId: owner.userId });
    expect(await as(inNew).organization.whoami({})).toMatchObject({ organizationId: organization.id, role: "OWNER" });
    expect(await actionsOf(organization.id)).toEqual(expect.arrayContaining(["organization.create", "api_token.create"]));

    const developerToken = await authenticateApiToken(services, await first.apiToken("DEVELOPER"), "CLI");
    expect(await codeOf(as(developerToken).organizations.create({ name: "sneaky" }))).toBe("FORBIDDEN");
    expect(await codeOf(as(null).organizations.create({ name: "anonymous" }))).toBe("UNAUTHORIZED");
    expect(await codeOf(as(null, "00000000-0000-4000-8000-000000000000").organizations.create({ name: "ghost" }))).toBe("UNAUTHORIZED");
    expect(await codeOf(as(owner).organizations.create({ name: "   " }))).toBe("BAD_REQUEST");
  });
});

describe("an OWNER's organization", () => {
  it("is renamed by its OWNER only", async () => {
    const org = await seedOrganization(services, "renamed");
    const admin = await org.member("ADMIN");
    expect(await codeOf(as(admin.actor).organizations.rename({ name: "taken over" }))).toBe("FORBIDDEN");
    expect(await as(org.as("OWNER")).organizations.rename({ name: "Renamed Inc" })).toEqual({ id: org.organizationId, name: "Renamed Inc" });
    expect(await as(org.as("OWNER")).organization.mine({})).toEqual([
      { organizationId: org.organizationId, name: "Renamed Inc", role: "OWNER", deletingAt: null },
    ]);
    const audit = await as(org.as("OWNER")).organization.audit({});
    expect(audit.find((event) => event.action === "organization.rename")?.changes).toEqual({ before: { name: "renamed" }, after: { name: "Renamed Inc" } });
  });

  it("is transferred to another member, who becomes OWNER while the old owner becomes ADMIN", async () => {
    const org = await seedOrganization(services, "handed");
    const [seededOwner] = await services.db.select().from(users).where(eq(users.email, "handed@example.test"));
    const ownerActor: Actor = { ...org.as("OWNER"), id: seededOwner!.id, userId: seededOwner!.id };
    const developer = await org.member("DEVELOPER");
    await seedOrganization(services, "stranger");

    expect(await codeOf(as(developer.actor).organizations.transfer({ email: developer.email }))).toBe("FORBIDDEN");
    expect(await codeOf(as(ownerActor).organizations.transfer({ email: "stranger@example.test" }))).toBe("NOT_FOUND");
    expect(await codeOf(as(ownerActor).organizations.transfer({ email: "handed@example.test" }))).toBe("BAD_REQUEST");

    expect(await as(ownerActor).organizations.transfer({ email: developer.email.toUpperCase() })).toEqual({ owner: developer.email, yourRole: "ADMIN" });
    const roles = Object.fromEntries(
      (await services.db.select().from(memberships).where(eq(memberships.organizationId, org.organizationId))).map((m) => [m.userId, m.role]),
    );
    expect(roles).toEqual({ [seededOwner!.id]: "ADMIN", [developer.userId]: "OWNER" });
    // The old owner's OWNER token now acts as what its creator is: an ADMIN.
    const oldOwnersToken = await authenticateApiToken(services, await org.apiToken("OWNER"), "CLI");
    expect(oldOwnersToken.role).toBe("ADMIN");
    expect(await codeOf(as(oldOwnersToken).organizations.transfer({ email: "handed@example.test" }))).toBe("FORBIDDEN");
    const audit = await as({ ...developer.actor, role: "OWNER" }).organization.audit({});
    expect(audit.find((event) => event.action === "organization.transfer")).toMatchObject({ targetId: developer.userId });
  });

  it("is deleted after its environments, each through an ordinary DELETE deployment, and keeps the record of it", async () => {
    const org = await seedOrganization(services, "doomed");
    const owner = as(org.as("OWNER"));
    const project = await owner.projects.create({ name: "shop" });
    const staging = await owner.environments.create({ projectId: project.id, name: "staging" });
    const production = await owner.environments.create({ projectId: project.id, name: "production" });
    const admin = await org.member("ADMIN");

    expect(await codeOf(as(admin.actor).organizations.delete({ confirm: "doomed" }))).toBe("FORBIDDEN");
    expect(await codeOf(owner.organizations.delete({ confirm: "Doomed" }))).toBe("BAD_REQUEST");
    const answer = await owner.organizations.delete({ confirm: "doomed" });
    expect(answer.status).toBe("DELETING");
    expect(answer.deploymentIds).toHaveLength(2);
    // The switcher marks it while its environments go.
    expect(await owner.organization.mine({})).toEqual([{ organizationId: org.organizationId, name: "doomed", role: "OWNER", deletingAt: expect.any(String) }]);
    const requested = await services.db.select().from(deployments).where(eq(deployments.organizationId, org.organizationId));
    expect(requested.map((d) => [d.environmentId, d.action, d.status]).sort()).toEqual(
      [
        [staging.id, "DELETE", "QUEUED"],
        [production.id, "DELETE", "QUEUED"],
      ].sort(),
    );

    // The engine reports each DELETE done: the environment goes, and with the last one the organization.
    const finish = async (deployment: (typeof requested)[number]) => {
      const at = new Date().toISOString();
      await appendEngineEvents(services.db, services, deployment, [
        { seq: 1, serviceId: null, step: "deployment", status: "started", at },
        { seq: 2, serviceId: null, step: "deployment", status: "succeeded", at },
      ]);
    };
    await finish(requested[0]!);
    expect(await services.db.select().from(organizations).where(eq(organizations.id, org.organizationId))).toHaveLength(1);
    await finish(requested[1]!);
    expect(await services.db.select().from(organizations).where(eq(organizations.id, org.organizationId))).toEqual([]);
    expect(await services.db.select().from(memberships).where(eq(memberships.organizationId, org.organizationId))).toEqual([]);

    const kept = await services.db.select().from(auditEvents).where(eq(auditEvents.targetId, org.organizationId));
    expect(kept.map((event) => [event.action, event.organizationId, event.actorLabel])).toEqual([
      ["organization.delete", null, "doomed-owner"],
      ["organization.deleted", null, "organization deletion"],
    ]);
  });

  it("goes at once when it has no environment, and the instance's first organization stays", async () => {
    const org = await seedOrganization(services, "empty");
    expect(await as(org.as("OWNER")).organizations.delete({ confirm: "empty" })).toEqual({ status: "DELETED", deploymentIds: [] });
    expect(await services.db.select().from(organizations).where(eq(organizations.id, org.organizationId))).toEqual([]);
    expect(await codeOf(as(first.as("OWNER")).organizations.delete({ confirm: "first" }))).toBe("CONFLICT");
  });
});

describe("the sign-up setting", () => {
  const account = { name: "Ada", email: "Ada@example.test", password: "a long password" };

  it("lets only invited people in by default, and only an instance admin opens sign-up", async () => {
    expect(await as(null).instance.settings({})).toEqual({ signup: "INVITE_ONLY" });
    expect(await codeOf(as(null).instance.signUp(account))).toBe("FORBIDDEN");
    expect(await codeOf(as(first.as("OWNER")).instance.updateSettings({ signup: "OPEN" }))).toBe("FORBIDDEN");

    const admin = await newcomer("admin@example.test");
    await services.db.update(users).set({ instanceAdmin: true }).where(eq(users.id, admin.id));
    // An admin who belongs to no organization still manages the instance.
    expect(await as(null, admin.id).instance.updateSettings({ signup: "OPEN" })).toEqual({ signup: "OPEN" });
    expect(await as(null).instance.settings({})).toEqual({ signup: "OPEN" });

    const ada = await as(null).instance.signUp(account);
    expect(ada).toMatchObject({ email: "ada@example.test", name: "Ada" });
    expect(await codeOf(as(null).instance.signUp(account))).toBe("CONFLICT");
    expect(await as(null, ada.id).instance.account({})).toMatchObject({ organizations: 0 });

    const trail = await services.db.select().from(auditEvents).where(eq(auditEvents.actorId, admin.id));
    expect(trail.map((event) => [event.action, event.changes])).toEqual([
      ["instance.update_settings", { before: { signup: "INVITE_ONLY" }, after: { signup: "OPEN" } }],
    ]);
    const signedUp = await services.db.select().from(auditEvents).where(eq(auditEvents.actorId, ada.id));
    expect(signedUp.map((event) => event.action)).toEqual(["user.sign_up"]);

    await as(null, admin.id).instance.updateSettings({ signup: "INVITE_ONLY" });
    expect(await codeOf(as(null).instance.signUp({ ...account, email: "late@example.test" }))).toBe("FORBIDDEN");
  });
});
