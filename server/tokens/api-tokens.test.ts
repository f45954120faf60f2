import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pino from "pino";
import { eq } from "drizzle-orm";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import type { Services } from "../context";
import { hashToken } from "../auth/tokens";
import { apiTokens, memberships } from "../db/schema";
import { startWebServer } from "../web-server";

/**
 * Issue 13, part 5: an API token acts with at most its creator's current role, dies with the
 * creator's membership, and only someone of the creator's rank may revoke it. Driven through the
 * real HTTP server with real tokens, as the CLI would.
 */
let services: Services;
let org: SeededOrganization;
let web: Awaited<ReturnType<typeof startWebServer>>;

beforeAll(async () => {
  const database = await createTestDatabase();
  services = testServices(database.db);
  org = await seedOrganization(services, "tokens");
  web = await startWebServer({ services, databaseUrl: database.url, logger: pino({ level: "silent" }), port: 0, host: "127.0.0.1" });
});
afterAll(() => web?.close());

const call = (token: string, path: string, init: RequestInit = {}) =>
  fetch(`${web.url}/api/v1${path}`, { ...init, headers: { "content-type": "application/json", authorization: `Bearer ${token}`, ...init.headers } });
const whoami = async (token: string) => {
  const answer = await call(token, "/whoami");
  return { status: answer.status, role: answer.ok ? ((await answer.json()) as { role: string }).role : null };
};
const createProject = (token: string, name: string) => call(token, "/projects", { method: "POST", body: JSON.stringify({ name }) });
type TokenRow = { id: string; name: string; revokedAt: string | null };
const tokens = async (token: string) => (await (await call(token, "/tokens")).json()) as TokenRow[];

describe("API tokens follow their creator's membership", () => {
  it("stop working when their creator is removed, even if the creator comes back, and the revocations are audited", async () => {
    const owner = await org.apiToken("OWNER");
    const admin = await org.member("ADMIN");
    const token = await admin.apiToken("ADMIN");
    expect(await whoami(token)).toEqual({ status: 200, role: "ADMIN" });
    // A token made by a token belongs to the same member.
    const made = await call(token, "/tokens", { method: "POST", body: JSON.stringify({ name: "made-by-a-token", role: "DEVELOPER" }) });
    expect(made.status).toBe(200);
    const child = ((await made.json()) as { token: string }).token;
    expect(await whoami(child)).toEqual({ status: 200, role: "DEVELOPER" });

    expect((await call(owner, `/members/${admin.userId}`, { method: "DELETE" })).status).toBe(200);
    expect(await whoami(token)).toEqual({ status: 401, role: null });
    expect(await whoami(child)).toEqual({ status: 401, role: null });
    expect((await createProject(token, "after-removal")).status).toBe(401);

    // Invited again, the member gets new access, not their old tokens back.
    await services.db.insert(memberships).values({ organizationId: org.organizationId, userId: admin.userId, role: "ADMIN" });
    expect(await whoami(token)).toEqual({ status: 401, role: null });
    const revoked = (await tokens(owner)).filter((row) => row.name === "test-ADMIN" || row.name === "made-by-a-token");
    expect(revoked.length).toBeGreaterThanOrEqual(2);
    expect(revoked.every((row) => row.revokedAt !== null)).toBe(true);
    const audit = (await (await call(owner, "/audit?limit=20")).json()) as { action: string; changes: Record<string, unknown> | null }[];
    expect(audit.filter((event) => event.action === "api_token.revoke").map((event) => event.changes)).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: "made-by-a-token", reason: "member removed" })]),
    );
  });

  it("act with at most their creator's current role", async () => {
    const owner = await org.apiToken("OWNER");
    const admin = await org.member("ADMIN");
    const token = await admin.apiToken("ADMIN");
    expect((await createProject(token, "before-demotion")).status).toBe(200);

    expect((await call(owner, `/members/${admin.userId}`, { method: "PATCH", body: JSON.stringify({ role: "VIEWER" }) })).status).toBe(200);
    expect(await whoami(token)).toEqual({ status: 200, role: "VIEWER" });
    expect((await createProject(token, "after-demotion")).status).toBe(403);
    expect((await call(token, "/tokens", { method: "POST", body: JSON.stringify({ name: "escalate", role: "ADMIN" }) })).status).toBe(403);

    // The token never acts above its own role either: promoted to OWNER, the member's ADMIN token stays ADMIN.
    expect((await call(owner, `/members/${admin.userId}`, { method: "PATCH", body: JSON.stringify({ role: "OWNER" }) })).status).toBe(200);
    expect(await whoami(token)).toEqual({ status: 200, role: "ADMIN" });
  });

  it("can be revoked only by someone whose role is at least their creator's", async () => {
    const ownerToken = await org.apiToken("VIEWER");
    const admin = await org.member("ADMIN");
    const adminToken = await admin.apiToken("ADMIN");
    const developer = await org.member("DEVELOPER");
    const developerToken = await developer.apiToken("DEVELOPER");
    const listed = await tokens(adminToken);
    const [ownersRow] = listed.filter((row) => row.name === "test-VIEWER" && row.revokedAt === null);
    const [developersRow] = listed.filter((row) => row.name === "test-DEVELOPER" && row.revokedAt === null);

    expect((await call(adminToken, `/tokens/${ownersRow!.id}`, { method: "DELETE" })).status).toBe(403);
    expect(await whoami(ownerToken)).toEqual({ status: 200, role: "VIEWER" });
    expect((await call(adminToken, `/tokens/${developersRow!.id}`, { method: "DELETE" })).status).toBe(200);
    expect(await whoami(developerToken)).toEqual({ status: 401, role: null });
  });

  it("refuse a token whose creator is unknown", async () => {
    // Rows from before creators were recorded for tokens made by tokens: nobody answers for them.
    const token = await org.apiToken("VIEWER");
    await services.db
      .update(apiTokens)
      .set({ createdById: null })
      .where(eq(apiTokens.tokenHash, hashToken(token)));
    expect(await whoami(token)).toEqual({ status: 401, role: null });
  });
});
