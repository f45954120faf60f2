import { beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { createCaller } from "../api/root";
import type { Actor } from "../auth/actor";
import { issueToken } from "../auth/tokens";
import type { Services } from "../context";
import { invites } from "../db/schema";
import { authenticateApiToken } from "../tokens/api-tokens";

let services: Services;
let org: SeededOrganization;

beforeAll(async () => {
  services = testServices((await createTestDatabase()).db);
  org = await seedOrganization(services, "members");
});

const as = (role: "OWNER" | "ADMIN" | "DEVELOPER" | "VIEWER") => createCaller({ services, actor: org.as(role) });
const anonymous = () => createCaller({ services, actor: null });
const tokenOf = (url: string) => url.split("/invite/")[1]!;
const callerOf = (actor: Actor) => createCaller({ services, actor });
const newcomer = (name: string) => ({ name, email: `${name}@example.test`, password: "a long password" });
/** The audit entries of an organization's invitation revocations, by invitation. */
const revocations = async () =>
  new Map(
    (await as("OWNER").organization.audit({ limit: 100 })).filter((e) => e.action === "member.revoke_invite").map((e) => [e.targetId, e.changes] as const),
  );

describe("members and invitations", () => {
  it("invites by link with a role; a newcomer creates an account and joins once", async () => {
    const { url, invite } = await as("ADMIN").members.invite({ role: "DEVELOPER" });
    expect(url).toMatch(/^http:\/\/localhost:3000\/invite\/swi_/);
    expect((await as("ADMIN").members.invites({})).map((i) => i.id)).toEqual([invite.id]);
    expect(await anonymous().invites.preview({ token: tokenOf(url) })).toMatchObject({ organizationName: "members", role: "DEVELOPER" });
    await expect(anonymous().invites.accept({ token: tokenOf(url), name: "Grace" })).rejects.toMatchObject({ code: "BAD_REQUEST" });
    expect(await anonymous().invites.accept({ token: tokenOf(url), name: "Grace", email: "Grace@Example.test", password: "a long password" })).toMatchObject({
      organizationName: "members",
      role: "DEVELOPER",
    });
    const members = await as("VIEWER").members.list({});
    expect(members.find((m) => m.email === "grace@example.test")).toMatchObject({ name: "Grace", role: "DEVELOPER" });
    await expect(anonymous().invites.preview({ token: tokenOf(url) })).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect(await as("ADMIN").members.invites({})).toEqual([]);
  });

  it("lets nobody invite above their own role, and revoked links stop working", async () => {
    await expect(as("ADMIN").members.invite({ role: "OWNER" })).rejects.toMatchObject({ code: "FORBIDDEN" });
    await expect(as("DEVELOPER").members.invite({ role: "VIEWER" })).rejects.toMatchObject({ code: "FORBIDDEN" });
    const { url, invite } = await as("OWNER").members.invite({ role: "VIEWER" });
    await as("OWNER").members.revokeInvite({ inviteId: invite.id });
    await expect(
      anonymous().invites.accept({ token: tokenOf(url), name: "Late", email: "late@example.test", password: "a long password" }),
    ).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
  });

  it("changes roles and removes members, but always keeps an owner", async () => {
    const grace = (await as("VIEWER").members.list({})).find((m) => m.email === "grace@example.test")!;
    expect(await as("ADMIN").members.changeRole({ userId: grace.userId, role: "VIEWER" })).toEqual({ userId: grace.userId, role: "VIEWER" });
    await expect(as("ADMIN").members.changeRole({ userId: grace.userId, role: "OWNER" })).rejects.toMatchObject({ code: "FORBIDDEN" });
    const owner = org.as("OWNER").id!;
    await expect(as("OWNER").members.changeRole({ userId: owner, role: "ADMIN" })).rejects.toMatchObject({ code: "CONFLICT" });
    await expect(as("OWNER").members.remove({ userId: owner })).rejects.toMatchObject({ code: "CONFLICT" });
    await as("ADMIN").members.remove({ userId: grace.userId });
    expect((await as("VIEWER").members.list({})).map((m) => m.email)).not.toContain("grace@example.test");
    const audit = (await as("OWNER").organization.audit({ limit: 100 })).map((e) => e.action);
    expect(audit).toEqual(expect.arrayContaining(["member.invite", "member.join", "member.change_role", "member.remove", "member.revoke_invite"]));
  });

  it("revokes the links a member made, through a token too, when the member is removed", async () => {
    // A removed ADMIN kept their own ADMIN link and used it to come back (review F1).
    const admin = await org.member("ADMIN");
    const own = await callerOf(admin.actor).members.invite({ role: "ADMIN" });
    const byToken = await callerOf(await authenticateApiToken(services, await admin.apiToken("ADMIN"), "API")).members.invite({ role: "DEVELOPER" });
    await as("OWNER").members.remove({ userId: admin.userId });

    await expect(callerOf(admin.actor).invites.accept({ token: tokenOf(own.url) })).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(anonymous().invites.accept({ token: tokenOf(byToken.url), ...newcomer("via-token") })).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect((await as("VIEWER").members.list({})).map((m) => m.userId)).not.toContain(admin.userId);
    const pending = (await as("ADMIN").members.invites({})).map((i) => i.id);
    expect(pending).not.toContain(own.invite.id);
    expect(pending).not.toContain(byToken.invite.id);
    const audited = await revocations();
    expect(audited.get(own.invite.id)).toEqual({ role: "ADMIN", reason: "member removed" });
    expect(audited.get(byToken.invite.id)).toEqual({ role: "DEVELOPER", reason: "member removed" });
  });

  it("revokes a demoted member's links above their new role, and keeps the others", async () => {
    const admin = await org.member("ADMIN");
    const asAdmin = callerOf(admin.actor);
    const above = await asAdmin.members.invite({ role: "ADMIN" });
    const within = await asAdmin.members.invite({ role: "DEVELOPER" });
    await as("OWNER").members.changeRole({ userId: admin.userId, role: "DEVELOPER" });

    await expect(anonymous().invites.accept({ token: tokenOf(above.url), ...newcomer("above") })).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect(await anonymous().invites.accept({ token: tokenOf(within.url), ...newcomer("within") })).toMatchObject({ role: "DEVELOPER" });
    const audited = await revocations();
    expect(audited.get(above.invite.id)).toEqual({ role: "ADMIN", reason: "member's role changed to DEVELOPER" });
    expect(audited.has(within.invite.id)).toBe(false);
  });

  it("refuses a link whose creator may no longer grant its role, however they lost it", async () => {
    // An ownership transfer makes the old owner an ADMIN without revoking anything: the link is checked when used.
    const owner = await org.member("OWNER");
    const heir = await org.member("ADMIN");
    const { url } = await callerOf(owner.actor).members.invite({ role: "OWNER" });
    await callerOf(owner.actor).organizations.transfer({ email: heir.email });
    const refused = { code: "FORBIDDEN", message: expect.stringContaining("This invitation is no longer valid") };
    await expect(anonymous().invites.preview({ token: tokenOf(url) })).rejects.toMatchObject(refused);
    await expect(anonymous().invites.accept({ token: tokenOf(url), ...newcomer("usurper") })).rejects.toMatchObject(refused);

    // A link that answers to nobody (made by a token before links recorded the member behind it) lets nobody in either.
    const issued = issueToken("invite");
    await services.db.insert(invites).values({
      organizationId: org.organizationId,
      role: "VIEWER",
      tokenHash: issued.hash,
      createdById: null,
      expiresAt: new Date(Date.now() + 3600_000),
    });
    await expect(anonymous().invites.accept({ token: issued.token, ...newcomer("orphan") })).rejects.toMatchObject(refused);
    const emails = (await as("VIEWER").members.list({})).map((m) => m.email);
    expect(emails).not.toContain("usurper@example.test");
    expect(emails).not.toContain("orphan@example.test");
  });
});
