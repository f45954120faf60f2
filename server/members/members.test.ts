import { beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { createCaller } from "../api/root";
import type { Services } from "../context";

let services: Services;
let org: SeededOrganization;

beforeAll(async () => {
  services = testServices((await createTestDatabase()).db);
  org = await seedOrganization(services, "members");
});

const as = (role: "OWNER" | "ADMIN" | "DEVELOPER" | "VIEWER") => createCaller({ services, actor: org.as(role) });
const anonymous = () => createCaller({ services, actor: null });
const tokenOf = (url: string) => url.split("/invite/")[1]!;

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
});
