import http from "node:http";
import type { AddressInfo } from "node:net";
import { and, asc, eq } from "drizzle-orm";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import type { Services } from "../context";
import { auditEvents, users } from "../db/schema";
import { updateInstanceSettings } from "../instance/settings";
import { acceptInvite } from "../members/accept-invite";
import { inviteMember } from "../members/members";
import { createApiToken } from "../tokens/api-tokens";
import { startWebServer } from "../web-server";
import { signUp } from "./accounts";
import { verifiedPrimaryEmail } from "./github";
import { GITHUB_EMAIL_UNVERIFIED, SIGNUP_CLOSED, signInRefusalMessage } from "./sign-in-refusals";
import { cookieJar } from "../../test/support/browser-session";

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

describe("the sign-in page's message for a refused sign-in", () => {
  it("is fixed text chosen by the code, never the link's own words", () => {
    const message = (query: string) => signInRefusalMessage(new URLSearchParams(query));
    expect(message("")).toBeNull();
    expect(message(`error=${SIGNUP_CLOSED}`)).toMatch(/ask an admin for an invitation/);
    const planted = message("error=Your+account+is+locked:+call+555-0100&code=<script>alert(1)</script>");
    expect(planted).toBe("The sign-in did not complete. Try again, or ask an admin if it keeps failing.");
    // A code named like an object's own property is no message either.
    expect(message("error=constructor")).toBe(planted);
  });
});

describe("signing in with GitHub", () => {
  let github: Awaited<ReturnType<typeof startGitHub>>;
  let web: Awaited<ReturnType<typeof startWebServer>>;
  let adaId: string;
  let services: Services;
  let org: SeededOrganization;

  beforeAll(async () => {
    github = await startGitHub();
    const database = await createTestDatabase();
    services = testServices(database.db);
    org = await seedOrganization(services, "github-sign-in");
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

  /** The browser's round trip: Slipway's sign-in, GitHub's authorization page, Slipway's callback; the cookies it ends with. */
  async function gitHubSignIn(): Promise<string> {
    return (await gitHubRoundTrip()).cookie;
  }

  /** The same round trip: the cookies it ends with and where Slipway's callback sends the browser. */
  async function gitHubRoundTrip(): Promise<{ cookie: string; location: string | null }> {
    const jar = cookieJar();
    const csrf = await fetch(`${web.url}/api/auth/csrf`);
    jar.keep(csrf);
    const { csrfToken } = (await csrf.json()) as { csrfToken: string };
    const start = await fetch(`${web.url}/api/auth/signin/github`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie: jar.header() },
      body: new URLSearchParams({ csrfToken }),
    });
    jar.keep(start);
    expect(start.headers.get("location")).toMatch(new RegExp(`^${github.url}/login/oauth/authorize\\?`));
    const authorized = await fetch(start.headers.get("location")!, { redirect: "manual" });
    const callback = await fetch(authorized.headers.get("location")!, { redirect: "manual", headers: { cookie: jar.header() } });
    jar.keep(callback);
    return { cookie: jar.header(), location: callback.headers.get("location") };
  }

  /**
   * A refused GitHub sign-in's round trip: no session, and where the browser lands. A refusal
   * ends on Slipway's sign-in page, with the message the page shows for its `error` code.
   */
  async function refusedGitHubSignIn(): Promise<{ page: string; error: string | null; message: string | null }> {
    const { cookie, location } = await gitHubRoundTrip();
    expect((await sessionOf(cookie))?.user).toBeUndefined();
    const landing = new URL(location ?? "", web.url);
    return { page: landing.origin + landing.pathname, error: landing.searchParams.get("error"), message: signInRefusalMessage(landing.searchParams) };
  }

  /** The sign-in form's round trip with an email and a password; the cookies it ends with. */
  async function passwordSignIn(email: string, password: string): Promise<string> {
    const jar = cookieJar();
    const csrf = await fetch(`${web.url}/api/auth/csrf`);
    jar.keep(csrf);
    const { csrfToken } = (await csrf.json()) as { csrfToken: string };
    const answer = await fetch(`${web.url}/api/auth/callback/credentials`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie: jar.header() },
      body: new URLSearchParams({ csrfToken, email, password }),
    });
    jar.keep(answer);
    return jar.header();
  }

  /** What Auth.js says of the browser's session. */
  async function sessionOf(cookie: string): Promise<{ user?: { id?: string; email?: string } } | null> {
    const session = await fetch(`${web.url}/api/auth/session`, { headers: { cookie } });
    return (await session.json()) as { user?: { id?: string; email?: string } } | null;
  }

  async function signInWithGitHub() {
    return sessionOf(await gitHubSignIn());
  }

  /** The signed-in account as the dashboard's API sees the session: its id, or the HTTP status it refused with. */
  async function accountOf(cookie: string): Promise<string | number> {
    const answer = await fetch(`${web.url}/api/trpc/instance.account?input=${encodeURIComponent("{}")}`, { headers: { cookie } });
    if (!answer.ok) return answer.status;
    return ((await answer.json()) as { result: { data: { id: string } } }).result.data.id;
  }

  /** The status the API answers an API token with. */
  async function tokenAnswers(token: string): Promise<number> {
    const answer = await fetch(`${web.url}/api/trpc/organization.whoami?input=${encodeURIComponent("{}")}`, { headers: { authorization: `Bearer ${token}` } });
    return answer.status;
  }

  /** The organizations where a GitHub sign-in's takeover of the account was recorded (null: the instance's own log). */
  async function takeoversRecorded(userId: string) {
    const events = await services.db
      .select({ organizationId: auditEvents.organizationId })
      .from(auditEvents)
      .where(and(eq(auditEvents.action, "user.github_takeover"), eq(auditEvents.targetId, userId)))
      .orderBy(asc(auditEvents.id));
    return events.map((event) => event.organizationId);
  }

  async function openSignUp() {
    await updateInstanceSettings(services.db, { ...org.as("OWNER"), id: adaId }, { signup: "OPEN" });
  }

  const verified = (email: string) => [{ email, primary: true, verified: true, visibility: "private" }];

  it("signs in as the account whose email GitHub verified as the primary one", async () => {
    github.signInAs(octocat(null), [{ email: "ada@example.test", primary: true, verified: true, visibility: "private" }]);
    expect((await signInWithGitHub())?.user?.id).toBe(adaId);
  });

  it("refuses a primary address GitHub has not verified: anyone can add anyone's address to a GitHub account", async () => {
    github.signInAs(octocat(null), [
      { email: "ada@example.test", primary: true, verified: false, visibility: null },
      { email: "octocat@github.test", primary: false, verified: true, visibility: null },
    ]);
    expect(await refusedGitHubSignIn()).toEqual({
      page: `${web.url}/signin`,
      error: GITHUB_EMAIL_UNVERIFIED,
      message: expect.stringContaining("Verify your primary email on GitHub, then sign in again") as string,
    });
  });

  it("does not take the profile's public address on its word", async () => {
    github.signInAs(octocat("ada@example.test"), [{ email: "octocat@github.test", primary: true, verified: false, visibility: "public" }]);
    expect((await refusedGitHubSignIn()).error).toBe(GITHUB_EMAIL_UNVERIFIED);
  });

  it("refuses an address no account has where sign-up is closed, and the sign-in page says to ask for an invitation", async () => {
    await updateInstanceSettings(services.db, { ...org.as("OWNER"), id: adaId }, { signup: "INVITE_ONLY" });
    github.signInAs(octocat(null), verified("stranger@example.test"));
    expect(await refusedGitHubSignIn()).toEqual({
      page: `${web.url}/signin`,
      error: SIGNUP_CLOSED,
      message: expect.stringContaining("sign-up is closed on this Slipway: ask an admin for an invitation") as string,
    });
    expect(await services.db.select().from(users).where(eq(users.email, "stranger@example.test"))).toEqual([]);
  });

  it("takes a password account from whoever signed up first with the address: their password and sessions end, and it is audited", async () => {
    await openSignUp();
    // Pre-account hijacking: someone signs up first with an address they do not own (nothing verifies it).
    const hijacked = await signUp(services, { name: "Victim", email: "victim@example.test", password: "the hijacker's password" });
    const hijackers = await passwordSignIn("victim@example.test", "the hijacker's password");
    expect(await accountOf(hijackers)).toBe(hijacked.id);

    // The address's owner signs in with GitHub, which verified it.
    github.signInAs(octocat(null), verified("victim@example.test"));
    const owners = await gitHubSignIn();
    expect(await accountOf(owners)).toBe(hijacked.id);

    // The hijacker's session is over everywhere, and the password no longer signs in.
    expect(await accountOf(hijackers)).toBe(401);
    expect((await sessionOf(hijackers))?.user).toBeUndefined();
    expect(await accountOf(await passwordSignIn("victim@example.test", "the hijacker's password"))).toBe(401);
    const [account] = await services.db.select({ passwordHash: users.passwordHash }).from(users).where(eq(users.id, hijacked.id));
    expect(account!.passwordHash).toBeNull();
    expect(await takeoversRecorded(hijacked.id)).toEqual([null]);

    // The owner's session lives on, and their next GitHub sign-in opens the account as it is.
    expect(await accountOf(owners)).toBe(hijacked.id);
    expect(await accountOf(await gitHubSignIn())).toBe(hijacked.id);
    expect(await takeoversRecorded(hijacked.id)).toEqual([null]);
  });

  it("creates an account without a password on a first GitHub sign-in where sign-up is open, and opens it again later", async () => {
    await openSignUp();
    github.signInAs(octocat(null), verified("newcomer@example.test"));
    const first = await accountOf(await gitHubSignIn());
    expect(first).toEqual(expect.any(String));
    expect(await accountOf(await gitHubSignIn())).toBe(first);
    const [account] = await services.db
      .select({ email: users.email, passwordHash: users.passwordHash })
      .from(users)
      .where(eq(users.id, first as string));
    expect(account).toEqual({ email: "newcomer@example.test", passwordHash: null });
    expect(await takeoversRecorded(first as string)).toEqual([]);
  });

  it("lets an invited member who made a password switch to GitHub: same account and membership, the password and its tokens retired", async () => {
    const { url } = await inviteMember({ ...services, actor: { ...org.as("OWNER"), id: adaId } }, { role: "DEVELOPER" });
    await acceptInvite(services, null, { token: url.split("/invite/")[1]!, name: "Grace", email: "grace@example.test", password: "grace's own password" });
    const passwordSession = await passwordSignIn("grace@example.test", "grace's own password");
    const grace = await accountOf(passwordSession);
    expect(grace).toEqual(expect.any(String));
    // A token made with the password: whoever held it could have made it, so it ends with the password.
    const { token } = await createApiToken({ ...services, actor: { ...org.as("DEVELOPER"), id: grace as string } }, { name: "ci", role: "DEVELOPER" });
    expect(await tokenAnswers(token)).toBe(200);

    github.signInAs(octocat(null), verified("Grace@example.test"));
    const cookie = await gitHubSignIn();
    expect(await accountOf(cookie)).toBe(grace);
    const whoami = await fetch(`${web.url}/api/trpc/organization.whoami?input=${encodeURIComponent("{}")}`, { headers: { cookie } });
    expect(((await whoami.json()) as { result: { data: unknown } }).result.data).toMatchObject({ organizationId: org.organizationId, role: "DEVELOPER" });
    expect(await accountOf(passwordSession)).toBe(401);
    expect(await tokenAnswers(token)).toBe(401);
    expect(await takeoversRecorded(grace as string)).toEqual([null, org.organizationId]);
    const revocations = await services.db.select({ changes: auditEvents.changes }).from(auditEvents).where(eq(auditEvents.action, "api_token.revoke"));
    expect(revocations.map((event) => event.changes)).toEqual([{ name: "ci", reason: "the account was taken over by a GitHub sign-in" }]);
  });
});
