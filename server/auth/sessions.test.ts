import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pino from "pino";
import { eq } from "drizzle-orm";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { users } from "../db/schema";
import { startWebServer } from "../web-server";
import { hashPassword } from "./passwords";

let web: Awaited<ReturnType<typeof startWebServer>>;
let org: SeededOrganization;
let services: ReturnType<typeof testServices>;
let databaseUrl: string;

beforeAll(async () => {
  const database = await createTestDatabase();
  databaseUrl = database.url;
  services = testServices(database.db);
  org = await seedOrganization(services, "sessions");
  await database.db
    .update(users)
    .set({ email: "ada@example.test", passwordHash: await hashPassword("correct horse battery") })
    .where(eq(users.email, "sessions@example.test"));
  web = await startWebServer({
    services,
    databaseUrl: database.url,
    logger: pino({ level: "silent" }),
    port: 0,
    host: "127.0.0.1",
    authSecret: "test-secret-of-at-least-32-characters!!",
  });
});
afterAll(() => web?.close());

/** Signs in the way a browser form does: CSRF token first, then the credentials callback. */
async function signIn(email: string, password: string): Promise<string> {
  const csrf = await fetch(`${web.url}/api/auth/csrf`);
  const { csrfToken } = (await csrf.json()) as { csrfToken: string };
  const jar = csrf.headers
    .getSetCookie()
    .map((c) => c.split(";")[0])
    .join("; ");
  const answer = await fetch(`${web.url}/api/auth/callback/credentials`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", cookie: jar },
    body: new URLSearchParams({ csrfToken, email, password }),
  });
  return [jar, ...answer.headers.getSetCookie().map((c) => c.split(";")[0])].join("; ");
}

const projects = (cookie: string) => fetch(`${web.url}/api/trpc/projects.list?input=${encodeURIComponent(JSON.stringify({}))}`, { headers: { cookie } });

describe("browser sessions", () => {
  it("offers email and password, and GitHub only when it is configured", async () => {
    const providers = (await (await fetch(`${web.url}/api/auth/providers`)).json()) as Record<string, unknown>;
    expect(Object.keys(providers)).toEqual(["credentials"]);
    const withGitHub = await startWebServer({
      services,
      databaseUrl,
      logger: pino({ level: "silent" }),
      port: 0,
      host: "127.0.0.1",
      authSecret: "test-secret-of-at-least-32-characters!!",
      github: { clientId: "id", clientSecret: "secret" },
    });
    try {
      const both = (await (await fetch(`${withGitHub.url}/api/auth/providers`)).json()) as Record<string, unknown>;
      expect(Object.keys(both).sort()).toEqual(["credentials", "github"]);
    } finally {
      await withGitHub.close();
    }
  });

  it("signs in with email and password and uses the session on the API as the member's role", async () => {
    const cookie = await signIn("ada@example.test", "correct horse battery");
    expect(cookie).toMatch(/authjs\.session-token=/);
    expect((await projects(cookie)).status).toBe(200);
    const whoami = await fetch(`${web.url}/api/trpc/organization.whoami?input=${encodeURIComponent("{}")}`, { headers: { cookie } });
    expect(((await whoami.json()) as { result: { data: unknown } }).result.data).toEqual({
      organizationId: org.organizationId,
      actor: "ada@example.test",
      role: "OWNER",
    });
  });

  it("gives no session for a wrong password, and the API refuses the request", async () => {
    const cookie = await signIn("ada@example.test", "wrong");
    expect(cookie).not.toMatch(/session-token=/);
    expect((await projects(cookie)).status).toBe(401);
  });
});
