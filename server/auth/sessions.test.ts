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

  it("sets the session cookie HttpOnly and SameSite, and Secure behind HTTPS", async () => {
    const sessionCookie = async (url: string) => {
      const csrf = await fetch(`${url}/api/auth/csrf`);
      const { csrfToken } = (await csrf.json()) as { csrfToken: string };
      const jar = csrf.headers
        .getSetCookie()
        .map((c) => c.split(";")[0])
        .join("; ");
      const answer = await fetch(`${url}/api/auth/callback/credentials`, {
        method: "POST",
        redirect: "manual",
        headers: { "content-type": "application/x-www-form-urlencoded", cookie: jar },
        body: new URLSearchParams({ csrfToken, email: "ada@example.test", password: "correct horse battery" }),
      });
      return answer.headers.getSetCookie().find((c) => /session-token=/.test(c)) ?? "";
    };
    const plain = await sessionCookie(web.url);
    expect(plain).toMatch(/^authjs\.session-token=/);
    expect(plain).toMatch(/; HttpOnly/i);
    expect(plain).toMatch(/; SameSite=Lax/i);
    // A TLS-terminating proxy in front: the public URL says https, the connection here is plain HTTP.
    const behindHttps = await startWebServer({
      services,
      databaseUrl,
      logger: pino({ level: "silent" }),
      port: 0,
      host: "127.0.0.1",
      publicUrl: "https://slipway.example.test",
      authSecret: "test-secret-of-at-least-32-characters!!",
    });
    try {
      const secure = await sessionCookie(behindHttps.url);
      expect(secure).toMatch(/^__Secure-authjs\.session-token=/);
      expect(secure).toMatch(/; Secure/i);
      expect(secure).toMatch(/; HttpOnly/i);
      expect(secure).toMatch(/; SameSite=Lax/i);
    } finally {
      await behindHttps.close();
    }
  });

  it("refuses cookie-authenticated mutations from another origin, even a same-site one", async () => {
    const cookie = await signIn("ada@example.test", "correct horse battery");
    const create = (name: string, headers: Record<string, string>) =>
      fetch(`${web.url}/api/trpc/projects.create`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify({ name }),
      });
    // An app served under the dashboard's domain is same-site: its pages send the dashboard's cookie along.
    expect((await create("from-an-app", { cookie, origin: "http://my-app.localhost:8080" })).status).toBe(403);
    expect((await create("from-nowhere", { cookie })).status).toBe(403);
    const rest = await fetch(`${web.url}/api/v1/projects`, {
      method: "POST",
      headers: { "content-type": "application/json", cookie, origin: "http://my-app.localhost:8080" },
      body: JSON.stringify({ name: "from-an-app-rest" }),
    });
    expect(rest.status).toBe(403);
    const names = async () => (((await (await projects(cookie)).json()) as { result: { data: { name: string }[] } }).result.data ?? []).map((p) => p.name);
    expect(await names()).not.toContain("from-an-app");
    expect((await create("from-the-dashboard", { cookie, origin: web.url })).status).toBe(200);
    expect(await names()).toContain("from-the-dashboard");
    // Reads stay open to the dashboard's own pages (the browser keeps other origins from reading them).
    expect((await projects(cookie)).status).toBe(200);
  });
});
