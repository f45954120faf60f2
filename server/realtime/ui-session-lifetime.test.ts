import { randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import pino from "pino";
import { io, type Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reconnectAfterServerDisconnect } from "../../components/realtime-reconnect";
import { ENGINE_NAMESPACE, PROTOCOL_VERSION } from "../../engine/protocol/messages";
import { createTestDatabase } from "../../test/database";
import { eventually } from "../../test/engine-harness";
import { expiringSoon, passwordSignIn, signOut } from "../../test/support/browser-session";
import { seedOrganization, testServices, type SeededMember, type SeededOrganization } from "../../test/support/seed";
import { createCaller } from "../api/root";
import { hashPassword } from "../auth/passwords";
import type { Services } from "../context";
import { shellSessions, users } from "../db/schema";
import { startWebServer } from "../web-server";
import { ACCESS_ENDED, UI_NAMESPACE, type ShellExitMessage, type ShellOpenAnswer } from "./ui-protocol";

/**
 * A browser session's `/ui` sockets (live logs, statuses, shells) end when the session does, not
 * only its next page load: when its cookie expires, and when it signs out (in any tab; on every
 * web process). Two web processes share one database: the browsers and the engine (a stand-in
 * that accepts shells) are connected to web B, the sign-out goes through web A.
 */
const AUTH_SECRET = "test-secret-of-at-least-32-characters!!";
const PASSWORD = "correct horse battery";

let services: Services;
let org: SeededOrganization;
let webA: Awaited<ReturnType<typeof startWebServer>>;
let webB: Awaited<ReturnType<typeof startWebServer>>;
let serviceId: string;
const sockets: Socket[] = [];

beforeAll(async () => {
  const database = await createTestDatabase();
  services = testServices(database.db);
  org = await seedOrganization(services, "session-lifetime");
  const start = () =>
    startWebServer({ services, databaseUrl: database.url, logger: pino({ level: "silent" }), port: 0, host: "127.0.0.1", authSecret: AUTH_SECRET });
  webA = await start();
  webB = await start();
  const api = createCaller({ services, actor: org.as("OWNER") });
  const project = await api.projects.create({ name: "shells" });
  const environment = await api.environments.create({ projectId: project.id, name: "dev" });
  serviceId = (await api.services.create({ environmentId: environment.id, name: "web", config: { git: { url: "file:///srv/app.git" } } })).id;
  const engine = await connect(webB.url, ENGINE_NAMESPACE, {
    auth: {
      token: org.engineToken,
      protocolVersion: PROTOCOL_VERSION,
      engineVersion: "test",
      capabilities: { runtime: "local", serviceKinds: ["APPLICATION"], shells: true },
    },
  });
  engine.on("shell:open", (_request: unknown, ack: (answer: unknown) => void) => ack({ ok: true }));
});
afterAll(async () => {
  for (const socket of sockets) socket.disconnect();
  await webA?.close();
  await webB?.close();
});

function connect(url: string, namespace: string, options: { auth?: object; headers?: Record<string, string> }): Promise<Socket> {
  const socket = io(`${url}${namespace}`, {
    auth: options.auth ?? {},
    extraHeaders: options.headers,
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
  });
  sockets.push(socket);
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

async function memberWithPassword(): Promise<SeededMember> {
  const member = await org.member("DEVELOPER");
  await services.db
    .update(users)
    .set({ passwordHash: await hashPassword(PASSWORD) })
    .where(eq(users.id, member.userId));
  return member;
}

/** A dashboard tab on web B: the session cookie, from the dashboard's own origin. */
const tab = (cookie: string) => connect(webB.url, UI_NAMESPACE, { headers: { cookie, origin: webB.url } });
const subscribe = (socket: Socket) =>
  socket.timeout(10_000).emitWithAck("subscribe", { room: `service:${serviceId}` }) as Promise<{ ok: boolean; error?: string }>;
/** A shell in the tab, and its end as the tab is told it. */
async function shellIn(socket: Socket) {
  const sessionId = randomUUID();
  const exit = new Promise<ShellExitMessage>((resolve) =>
    socket.on("shell:exit", (message: ShellExitMessage) => message.sessionId === sessionId && resolve(message)),
  );
  expect(await socket.timeout(20_000).emitWithAck("shell:open", { sessionId, serviceId })).toEqual({ ok: true, sessionId } satisfies ShellOpenAnswer);
  return { sessionId, exit };
}
const disconnected = (socket: Socket) =>
  new Promise<string>((resolve) => (socket.connected ? socket.once("disconnect", (reason) => resolve(reason)) : resolve("already disconnected")));
/** Fails quickly: the sockets are re-checked every minute anyway, so "eventually" is not what is tested. */
const within = <T>(promise: Promise<T>, what: string, ms = 5_000) =>
  Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms))]);
const closeReason = (sessionId: string) =>
  eventually(
    async () => {
      const [row] = await services.db.select().from(shellSessions).where(eq(shellSessions.id, sessionId));
      return row?.closedAt ? row.closeReason : undefined;
    },
    5_000,
    "the shell session to be closed",
  );

describe("a browser session's live connections", () => {
  it("end when it signs out, in every tab of that browser, on another web process; its other sessions keep theirs", async () => {
    const member = await memberWithPassword();
    const browser = await passwordSignIn(webB.url, member.email, PASSWORD);
    const otherDevice = await passwordSignIn(webB.url, member.email, PASSWORD);
    const cookie = browser.header();
    const [first, second, elsewhere] = [await tab(cookie), await tab(cookie), await tab(otherDevice.header())];
    for (const socket of [first, second, elsewhere]) expect(await subscribe(socket)).toEqual({ ok: true });
    const shell = await shellIn(second);
    const otherShell = await shellIn(elsewhere);
    const gone = [disconnected(first), disconnected(second)];
    // The first tab reconnects as the dashboard does, with what its browser holds then.
    const refused = new Promise<Error>((resolve) => first.on("connect_error", resolve));
    reconnectAfterServerDisconnect(first, 200);

    // The first tab signs out (its requests go to web A); the second tab is not told by its browser.
    await signOut(webA.url, browser);
    // What the tab's next handshake sends: its browser's cookies, the session's now cleared.
    first.io.opts.extraHeaders = { cookie: browser.header(), origin: webB.url };

    expect((await within(shell.exit, "the shell's end")).reason).toBe(ACCESS_ENDED.signedOut);
    for (const socket of gone) expect(await within(socket, "the tab's disconnection")).toBe("io server disconnect");
    expect(await closeReason(shell.sessionId)).toBe(ACCESS_ENDED.signedOut);
    // The other device's session stays, its shell too.
    expect(await subscribe(elsewhere)).toEqual({ ok: true });
    expect(elsewhere.connected).toBe(true);
    const [row] = await services.db.select().from(shellSessions).where(eq(shellSessions.id, otherShell.sessionId));
    expect(row!.closedAt).toBeNull();
    // The tab's reconnection is refused, and not tried again.
    expect((await within(refused, "the reconnection's refusal")).message).toMatch(/sign in/i);
    expect(first.active).toBe(false);
  }, 60_000);

  it("end when the cookie they connected with expires, which is refused from then on", async () => {
    const member = await memberWithPassword();
    const browser = await passwordSignIn(webB.url, member.email, PASSWORD);
    const expiring = await expiringSoon(browser, AUTH_SECRET, 4);
    const socket = await tab(expiring);
    expect(await subscribe(socket)).toEqual({ ok: true });
    const shell = await shellIn(socket);
    const gone = disconnected(socket);

    expect((await within(shell.exit, "the shell's end at the expiry", 10_000)).reason).toBe(ACCESS_ENDED.expired);
    expect(await within(gone, "the disconnection")).toBe("io server disconnect");
    expect(await closeReason(shell.sessionId)).toBe(ACCESS_ENDED.expired);
    // Within Auth.js's clock tolerance (15 s) the expired cookie would still read: it is refused all the same.
    await expect(tab(expiring)).rejects.toThrow(/sign in/i);
  }, 60_000);

  it("come back by themselves when the browser holds a renewed cookie by the expiry", async () => {
    const member = await memberWithPassword();
    const browser = await passwordSignIn(webB.url, member.email, PASSWORD);
    const socket = await tab(await expiringSoon(browser, AUTH_SECRET, 3));
    reconnectAfterServerDisconnect(socket, 200);
    // Auth.js renewed the browser's cookie meanwhile (its rolling update): the next handshake sends that one.
    socket.io.opts.extraHeaders = { cookie: browser.header(), origin: webB.url };

    expect(await within(disconnected(socket), "the disconnection at the expiry", 10_000)).toBe("io server disconnect");
    await within(new Promise<void>((resolve) => socket.once("connect", () => resolve())), "the reconnection");
    expect(await subscribe(socket)).toEqual({ ok: true });
  }, 60_000);
});
