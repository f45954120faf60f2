import http from "node:http";
import type { AddressInfo } from "node:net";
import { eq } from "drizzle-orm";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices } from "../../test/support/seed";
import { users } from "../db/schema";
import { startWebServer } from "../web-server";
import { verifiedPrimaryEmail } from "./github";

/**
 * A GitHub Enterprise Server's OAuth and REST endpoints as its documentation describes them
 * (https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps,
 * https://docs.github.com/en/rest/users/emails): the authorization page grants at once, and
 * the signed-in account is whatever `account` holds when the code is exchanged.
 */
async function startGitHub() {
  let account = { user: {} as Record<string, unknown>, emails: [] as Record<string, unknown>[] };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://github.test");
    const json = (body: unknown) => {
      res.setHeader("content-type", "application/json; charset=utf-8");
      res.end(JSON.stringify(body));
    };
    if (url.pathname === "/login/oauth/authorize") {
      const back = new URL(url.searchParams.get("redirect_uri")!);
      back.searchParams.set("code", "granted-code");
      back.searchParams.set("state", url.searchParams.get("state") ?? "");
      res.writeHead(302, { location: back.href }).end();
    } else if (url.pathname === "/login/oauth/access_token" && req.method === "POST") {
      json({ access_token: "gho_test", token_type: "bearer", scope: "read:user,user:email" });
    } else if (req.headers.authorization !== "Bearer gho_test") {
      res.writeHead(401).end();
    } else if (url.pathname === "/api/v3/user") {
      json(account.user);
    } else if (url.pathname === "/api/v3/user/emails") {
      json(account.emails);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    signInAs(user: Record<string, unknown>, emails: Record<string, unknown>[]) {
      account = { user, emails };
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const octocat = (email: string | null) => ({ login: "octocat", id: 583231, name: "The Octocat", email, avatar_url: "https://github.test/images/octocat.gif" });

describe("the account's email GitHub vouches for", () => {
  it("is the primary address, once verified", () => {
    expect(
      verifiedPrimaryEmail([
        { email: "octocat@github.com", verified: true, primary: true, visibility: "public" },
        { email: "old@example.test", verified: true, primary: false, visibility: null },
      ]),
    ).toBe("octocat@github.com");
    expect(
      verifiedPrimaryEmail([
        { email: "ada@example.test", verified: false, primary: true, visibility: null },
        { email: "octocat@github.com", verified: true, primary: false, visibility: null },
      ]),
    ).toBeNull();
    expect(verifiedPrimaryEmail([])).toBeNull();
  });
});

describe("signing in with GitHub", () => {
  let github: Awaited<ReturnType<typeof startGitHub>>;
  let web: Awaited<ReturnType<typeof startWebServer>>;
  let adaId: string;

  beforeAll(async () => {
    github = await startGitHub();
    const database = await createTestDatabase();
    const services = testServices(database.db);
    await seedOrganization(services, "github-sign-in");
    const [ada] = await database.db.update(users).set({ email: "ada@example.test" }).where(eq(users.email, "github-sign-in@example.test")).returning();
    adaId = ada!.id;
    web = await startWebServer({
      services,
      databaseUrl: database.url,
      logger: pino({ level: "silent" }),
      port: 0,
      host: "127.0.0.1",
      authSecret: "test-secret-of-at-least-32-characters!!",
      github: { clientId: "Iv1.test", clientSecret: "test-client-secret", enterpriseUrl: github.url },
    });
  });
  afterAll(async () => {
    await web?.close();
    await github?.close();
  });

  /** The browser's round trip: Slipway's sign-in, GitHub's authorization page, Slipway's callback; the session it ends with. */
  async function signInWithGitHub(): Promise<{ user?: { id?: string; email?: string } } | null> {
    const cookies = new Map<string, string>();
    const keep = (response: Response) => {
      for (const cookie of response.headers.getSetCookie()) {
        const [pair] = cookie.split(";");
        const at = pair!.indexOf("=");
        cookies.set(pair!.slice(0, at), pair!.slice(at + 1));
      }
    };
    const jar = () => [...cookies].map(([name, value]) => `${name}=${value}`).join("; ");
    const csrf = await fetch(`${web.url}/api/auth/csrf`);
    keep(csrf);
    const { csrfToken } = (await csrf.json()) as { csrfToken: string };
    const start = await fetch(`${web.url}/api/auth/signin/github`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie: jar() },
      body: new URLSearchParams({ csrfToken }),
    });
    keep(start);
    expect(start.headers.get("location")).toMatch(new RegExp(`^${github.url}/login/oauth/authorize\\?`));
    const authorized = await fetch(start.headers.get("location")!, { redirect: "manual" });
    const callback = await fetch(authorized.headers.get("location")!, { redirect: "manual", headers: { cookie: jar() } });
    keep(callback);
    const session = await fetch(`${web.url}/api/auth/session`, { headers: { cookie: jar() } });
    return (await session.json()) as { user?: { id?: string; email?: string } } | null;
  }

  it("signs in as the account whose email GitHub verified as the primary one", async () => {
    github.signInAs(octocat(null), [{ email: "ada@example.test", primary: true, verified: true, visibility: "private" }]);
    expect((await signInWithGitHub())?.user?.id).toBe(adaId);
  });

  it("refuses a primary address GitHub has not verified: anyone can add anyone's address to a GitHub account", async () => {
    github.signInAs(octocat(null), [
      { email: "ada@example.test", primary: true, verified: false, visibility: null },
      { email: "octocat@github.test", primary: false, verified: true, visibility: null },
    ]);
    expect((await signInWithGitHub())?.user).toBeUndefined();
  });

  it("does not take the profile's public address on its word", async () => {
    github.signInAs(octocat("ada@example.test"), [{ email: "octocat@github.test", primary: true, verified: false, visibility: "public" }]);
    expect((await signInWithGitHub())?.user).toBeUndefined();
  });
});
