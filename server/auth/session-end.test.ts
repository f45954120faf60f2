import type { ServerResponse } from "node:http";
import { and, eq } from "drizzle-orm";
import pino from "pino";
import { io, type Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reconnectAfterServerDisconnect } from "../../components/realtime-reconnect";
import { createTestDatabase } from "../../test/database";
import { expiringSoon, passwordSignIn, SESSION_COOKIE, sessionClaims, signOut, type CookieJar } from "../../test/support/browser-session";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import type { Services } from "../context";
import { auditEvents, endedSessions, users } from "../db/schema";
import { UI_NAMESPACE } from "../realtime/ui-protocol";
import { startWebServer } from "../web-server";
import { hashPassword } from "./passwords";
import { sessionStamp, stampEndedBy } from "./session-stamp";

/**
 * A browser session ends on the server, not only in the browser that ends it: a copy of its
 * cookie (another tab's, a stolen one) is refused after a sign-out, by the API, the pages, new
 * live connections and Auth.js's own session read; "sign out everywhere" ends every browser's.
 * And a session in use lasts 7 days from its last use: the dashboard's API calls renew its cookie.
 * A real web process on a real database; its pages are a stand-in for Next.js's.
 */
const AUTH_SECRET = "test-secret-of-at-least-32-characters!!";
const PASSWORD = "correct horse battery";
const DAY_SECONDS = 86_400;

let services: Services;
let org: SeededOrganization;
let web: Awaited<ReturnType<typeof startWebServer>>;
const sockets: Socket[] = [];

beforeAll(async () => {
  const database = await createTestDatabase();
  services = testServices(database.db);
  org = await seedOrganization(services, "session-end");
  const dashboardPage = async (_req: unknown, res: ServerResponse) => {
    res.writeHead(200, { "content-type": "text/html" }).end("<main>dashboard</main>");
  };
  web = await startWebServer({
    services,
    databaseUrl: database.url,
    logger: pino({ level: "silent" }),
    port: 0,
    host: "127.0.0.1",
    authSecret: AUTH_SECRET,
    pages: dashboardPage,
  });
});
afterAll(async () => {
  for (const socket of sockets) socket.disconnect();
  await web?.close();
});

async function memberWithPassword() {
  const member = await org.member("DEVELOPER");
  await services.db
    .update(users)
    .set({ passwordHash: await hashPassword(PASSWORD) })
    .where(eq(users.id, member.userId));
  return member;
}

/** The dashboard's first call on every page (tRPC over GET, as its client sends it). */
const whoami = (cookie: string) => fetch(`${web.url}/api/trpc/organization.whoami?input=${encodeURIComponent("{}")}`, { headers: { cookie } });
/** A page load, as the browser makes it. */
const pageLoad = (cookie: string) => fetch(`${web.url}/projects`, { headers: { cookie, accept: "text/html" }, redirect: "manual" });
/** What Auth.js's `/api/auth/session` (next-auth's useSession) says of the cookie. */
const authJsSession = async (cookie: string) =>
  (await (await fetch(`${web.url}/api/auth/session`, { headers: { cookie } })).json()) as { user?: unknown } | null;
/** A dashboard tab's live connection. */
function tab(cookie: string): Promise<Socket> {
  const socket = io(`${web.url}${UI_NAMESPACE}`, { extraHeaders: { cookie, origin: web.url }, transports: ["websocket"], reconnection: false, forceNew: true });
  sockets.push(socket);
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}
const disconnected = (socket: Socket) => new Promise<string>((resolve) => socket.once("disconnect", (reason) => resolve(reason)));
const within = <T>(promise: Promise<T>, what: string, ms = 5_000) =>
  Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms))]);
const renewedCookie = (response: Response) =>
  response.headers.getSetCookie().find((set) => set.startsWith(`${SESSION_COOKIE}=`) && !set.startsWith(`${SESSION_COOKIE}=;`));

describe("why a session's stamp no longer matches its account", () => {
  it("tells a sign-out everywhere from a changed password and a GitHub takeover; an account that never signed out everywhere stamps as before", () => {
    const signedIn = sessionStamp("hash-1");
    expect(signedIn).toBe(sessionStamp("hash-1", 0));
    expect(stampEndedBy(signedIn, { passwordHash: "hash-1", sessionGeneration: 0 })).toBeNull();
    expect(stampEndedBy(signedIn, { passwordHash: "hash-1", sessionGeneration: 1 })).toBe("signed-out-everywhere");
    expect(stampEndedBy(signedIn, { passwordHash: "hash-2", sessionGeneration: 1 })).toBe("password-changed");
    expect(stampEndedBy(signedIn, { passwordHash: null, sessionGeneration: 0 })).toBe("github-takeover");
    const later = sessionStamp("hash-1", 1);
    expect(stampEndedBy(later, { passwordHash: "hash-1", sessionGeneration: 1 })).toBeNull();
    expect(stampEndedBy(later, { passwordHash: "hash-1", sessionGeneration: 2 })).toBe("signed-out-everywhere");
    expect(() => sessionStamp("hash-1", -1)).toThrow(/whole number/);
  });
});

describe("a session that signed out", () => {
  it("refuses a copy of its cookie taken before: the API, pages, new live connections and Auth.js's session read; the account's other sessions stay", async () => {
    const member = await memberWithPassword();
    const browser = await passwordSignIn(web.url, member.email, PASSWORD);
    const otherDevice = await passwordSignIn(web.url, member.email, PASSWORD);
    const copy = browser.header();
    const { sid, exp } = await sessionClaims(browser.get(SESSION_COOKIE)!, AUTH_SECRET);
    expect((await whoami(copy)).status).toBe(200);
    expect((await pageLoad(copy)).status).toBe(200);

    await signOut(web.url, browser);

    // Soft: each reader's refusal is reported on its own.
    expect.soft((await whoami(copy)).status).toBe(401);
    const page = await pageLoad(copy);
    expect.soft(page.status).toBe(302);
    expect.soft(page.headers.get("location")).toMatch(/^\/signin\?/);
    await expect.soft(tab(copy)).rejects.toThrow(/sign in/i);
    expect.soft((await authJsSession(copy))?.user).toBeUndefined();
    // Recorded until the copy would have expired anyway, when retention deletes it.
    const [ended] = await services.db
      .select()
      .from(endedSessions)
      .where(eq(endedSessions.sessionId, sid as string));
    expect(ended).toMatchObject({ userId: member.userId, expiresAt: new Date(exp * 1000) });

    expect((await whoami(otherDevice.header())).status).toBe(200);
    await tab(otherDevice.header());
  }, 60_000);
});

describe("signing out everywhere", () => {
  it("ends every browser session of the account, the asking one's too, and their live connections; it is audited; signing in again works", async () => {
    const member = await memberWithPassword();
    const colleague = await memberWithPassword();
    const laptop = await passwordSignIn(web.url, member.email, PASSWORD);
    const phone = await passwordSignIn(web.url, member.email, PASSWORD);
    const colleagues = await passwordSignIn(web.url, colleague.email, PASSWORD);
    const phoneTab = await tab(phone.header());
    const gone = disconnected(phoneTab);

    const answer = await fetch(`${web.url}/api/trpc/instance.signOutEverywhere`, {
      method: "POST",
      headers: { cookie: laptop.header(), origin: web.url, "content-type": "application/json" },
      body: "{}",
    });
    expect(answer.status).toBe(200);

    for (const browser of [laptop, phone]) {
      expect.soft((await whoami(browser.header())).status).toBe(401);
      expect.soft((await pageLoad(browser.header())).status).toBe(302);
      expect.soft((await authJsSession(browser.header()))?.user).toBeUndefined();
      await expect.soft(tab(browser.header())).rejects.toThrow(/sign in/i);
    }
    expect(await within(gone, "the phone's live connection ending")).toBe("io server disconnect");
    // Another account's session is not concerned.
    expect((await whoami(colleagues.header())).status).toBe(200);

    const audited = await services.db
      .select({ organizationId: auditEvents.organizationId })
      .from(auditEvents)
      .where(and(eq(auditEvents.action, "user.sign_out_everywhere"), eq(auditEvents.actorId, member.userId)));
    expect(audited.map((event) => event.organizationId).sort()).toEqual([org.organizationId, null].sort());

    const again = await passwordSignIn(web.url, member.email, PASSWORD);
    expect((await whoami(again.header())).status).toBe(200);
    await tab(again.header());
  }, 60_000);
});

describe("a session in use", () => {
  /** The jar's session cookie as if it had been issued `age` seconds ago (its expiry 7 days after that). */
  async function aged(jar: CookieJar, age: number) {
    const cookie = await expiringSoon(jar, AUTH_SECRET, 7 * DAY_SECONDS - age);
    jar.set(SESSION_COOKIE, cookie.slice(SESSION_COOKIE.length + 1));
  }

  it("is renewed by the dashboard's API calls once its cookie is a day old: it lasts 7 days from its last use, still the same session", async () => {
    const member = await memberWithPassword();
    const browser = await passwordSignIn(web.url, member.email, PASSWORD);
    const { sid } = await sessionClaims(browser.get(SESSION_COOKIE)!, AUTH_SECRET);
    // A cookie issued less than a day ago is not re-issued on every call.
    expect(renewedCookie(await whoami(browser.header()))).toBeUndefined();
    await aged(browser, DAY_SECONDS + 60);
    const before = await sessionClaims(browser.get(SESSION_COOKIE)!, AUTH_SECRET);

    const call = await whoami(browser.header());
    expect(call.status).toBe(200);
    const renewed = renewedCookie(call);
    expect(renewed).toBeDefined();
    browser.keep(call);
    const after = await sessionClaims(browser.get(SESSION_COOKIE)!, AUTH_SECRET);
    expect(after.exp - before.exp).toBeGreaterThanOrEqual(DAY_SECONDS);
    expect(after.exp * 1000).toBeGreaterThan(Date.now() + 7 * DAY_SECONDS * 1000 - 60_000);
    expect(renewed).toMatch(/HttpOnly/i);
    expect(after.sid).toBe(sid);
    expect((await whoami(browser.header())).status).toBe(200);
  }, 60_000);

  it("is not renewed once it signed out", async () => {
    const member = await memberWithPassword();
    const browser = await passwordSignIn(web.url, member.email, PASSWORD);
    await aged(browser, 2 * DAY_SECONDS);
    const copy = browser.header();
    await signOut(web.url, browser);
    const call = await whoami(copy);
    expect(call.status).toBe(401);
    expect(renewedCookie(call)).toBeUndefined();
  }, 60_000);

  it("keeps its live connection: ended at its old cookie's expiry, the tab reconnects with the cookie its API calls renewed", async () => {
    const member = await memberWithPassword();
    const browser = await passwordSignIn(web.url, member.email, PASSWORD);
    await aged(browser, 7 * DAY_SECONDS - 3);
    const socket = await tab(browser.header());
    reconnectAfterServerDisconnect(socket, 200);
    const refused = new Promise<Error>((resolve) => socket.on("connect_error", resolve));
    // Meanwhile the tab's page calls the API; the browser keeps what it answers.
    browser.keep(await whoami(browser.header()));
    // What the tab's next handshake sends: its browser's cookies.
    socket.io.opts.extraHeaders = { cookie: browser.header(), origin: web.url };

    expect(await within(disconnected(socket), "the disconnection at the old cookie's expiry", 10_000)).toBe("io server disconnect");
    const back = new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    await within(Promise.race([back, refused.then((error) => Promise.reject(error))]), "the reconnection");
    expect(socket.connected).toBe(true);
  }, 60_000);
});
