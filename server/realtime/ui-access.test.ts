import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pino from "pino";
import { and, eq } from "drizzle-orm";
import { io, type Socket } from "socket.io-client";
import { createTestDatabase, type TestDatabase } from "../../test/database";
import { eventually } from "../../test/engine-harness";
import { seedOrganization, testServices, type SeededMember, type SeededOrganization } from "../../test/support/seed";
import { ENGINE_NAMESPACE, PROTOCOL_VERSION } from "../../engine/protocol/messages";
import { hashPassword } from "../auth/passwords";
import { hashToken } from "../auth/tokens";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { apiTokens, auditEvents, memberships, shellSessions, users } from "../db/schema";
import { startWebServer } from "../web-server";
import { UI_NAMESPACE, type ShellExitMessage, type ShellOpenAnswer } from "./ui-protocol";

/**
 * Issue 13, part 5: access on `/ui` ends when it should. Two web processes share one database:
 * the browser or CLI, and the engine (a stand-in that accepts shells), are connected to web B;
 * the change is made through web A, whose process holds none of their sockets. Revocation, removal and role changes end
 * or downgrade open sockets and shells at once; every room join and shell open is checked
 * against the current state; a session cookie from another origin opens nothing.
 */
const AUTH_SECRET = "test-secret-of-at-least-32-characters!!";
const PASSWORD = "correct horse battery";

let database: TestDatabase;
let services: Services;
let org: SeededOrganization;
let webA: Awaited<ReturnType<typeof startWebServer>>;
let webB: Awaited<ReturnType<typeof startWebServer>>;
let serviceId: string;
let engine: Socket;
/** Sessions the engine was asked to close. */
const closedByEngine: string[] = [];
const sockets: Socket[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  services = testServices(database.db);
  org = await seedOrganization(services, "access");
  const start = () =>
    startWebServer({
      services,
      databaseUrl: database.url,
      logger: pino({ level: "silent" }),
      port: 0,
      host: "127.0.0.1",
      authSecret: AUTH_SECRET,
    });
  webA = await start();
  webB = await start();
  const api = createCaller({ services, actor: org.as("OWNER") });
  const project = await api.projects.create({ name: "shells" });
  const environment = await api.environments.create({ projectId: project.id, name: "dev" });
  serviceId = (await api.services.create({ environmentId: environment.id, name: "web", config: { git: { url: "file:///srv/app.git" } } })).id;
  engine = await connect(webB.url, ENGINE_NAMESPACE, {
    auth: {
      token: org.engineToken,
      protocolVersion: PROTOCOL_VERSION,
      engineVersion: "test",
      capabilities: { runtime: "local", serviceKinds: ["APPLICATION"], shells: true },
    },
  });
  engine.on("shell:open", (_request: unknown, ack: (answer: unknown) => void) => ack({ ok: true }));
  engine.on("shell:close", (message: { sessionId: string }) => closedByEngine.push(message.sessionId));
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

/** Signs in the way the browser form does, and returns the cookies. */
async function signIn(url: string, email: string): Promise<string> {
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
    body: new URLSearchParams({ csrfToken, email, password: PASSWORD }),
  });
  const cookie = [jar, ...answer.headers.getSetCookie().map((c) => c.split(";")[0])].join("; ");
  expect(cookie).toMatch(/authjs\.session-token=/);
  return cookie;
}

async function memberWithPassword(role: "ADMIN" | "DEVELOPER" | "VIEWER"): Promise<SeededMember> {
  const member = await org.member(role);
  await services.db
    .update(users)
    .set({ passwordHash: await hashPassword(PASSWORD) })
    .where(eq(users.id, member.userId));
  return member;
}

/** A browser on web B: the member's session cookie, sent from the dashboard's own origin. */
async function browserOf(member: SeededMember): Promise<Socket> {
  const cookie = await signIn(webB.url, member.email);
  return connect(webB.url, UI_NAMESPACE, { headers: { cookie, origin: webB.url } });
}

/** Longer than the relay's own wait for the engine (15 s), so that a slow engine answer fails with the relay's reason. */
const openShell = (socket: Socket) => socket.timeout(20_000).emitWithAck("shell:open", { sessionId: randomUUID(), serviceId }) as Promise<ShellOpenAnswer>;
const subscribe = (socket: Socket) =>
  socket.timeout(10_000).emitWithAck("subscribe", { room: `service:${serviceId}` }) as Promise<{ ok: boolean; error?: string }>;
const disconnected = (socket: Socket) =>
  new Promise<string>((resolve) => (socket.connected ? socket.once("disconnect", (reason) => resolve(reason)) : resolve("already disconnected")));
const exitOf = (socket: Socket, sessionId: string) =>
  new Promise<ShellExitMessage>((resolve) =>
    socket.on("shell:exit", (message: ShellExitMessage) => {
      if (message.sessionId === sessionId) resolve(message);
    }),
  );
/** Fails quickly instead of at the test's timeout when access is not ended. */
const within = <T>(promise: Promise<T>, what: string, ms = 5_000) =>
  Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms))]);

async function closedSession(sessionId: string) {
  return eventually(
    async () => {
      const [row] = await services.db.select().from(shellSessions).where(eq(shellSessions.id, sessionId));
      return row?.closedAt ? row : undefined;
    },
    5_000,
    `shell session ${sessionId} to be closed`,
  );
}

async function shellCloseAudit(sessionId: string) {
  const rows = await services.db
    .select()
    .from(auditEvents)
    .where(and(eq(auditEvents.organizationId, org.organizationId), eq(auditEvents.action, "shell.close")));
  return rows.find((row) => row.changes?.sessionId === sessionId);
}

describe("access on /ui ends when it should", () => {
  it("ends a revoked token's socket and shells at once, on another web process", async () => {
    const developer = await org.member("DEVELOPER");
    const token = await developer.apiToken("DEVELOPER");
    const cli = await connect(webB.url, UI_NAMESPACE, { auth: { token } });
    const opened = await openShell(cli);
    expect(opened).toMatchObject({ ok: true });
    const sessionId = (opened as { sessionId: string }).sessionId;
    const exit = exitOf(cli, sessionId);
    const gone = disconnected(cli);

    const [row] = await services.db
      .select({ id: apiTokens.id })
      .from(apiTokens)
      .where(eq(apiTokens.tokenHash, hashToken(token)));
    // Revoked through web A's REST API, as an administrator would.
    const revoke = await fetch(`${webA.url}/api/v1/tokens/${row!.id}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${await org.apiToken("OWNER")}` },
    });
    expect(revoke.status).toBe(200);

    expect((await within(exit, "the shell's end")).reason).toMatch(/access/i);
    await within(gone, "the disconnection");
    expect((await closedSession(sessionId)).closeReason).toMatch(/access/i);
    expect((await shellCloseAudit(sessionId))?.changes).toMatchObject({ reason: expect.stringMatching(/access/i) });
    await eventually(async () => closedByEngine.includes(sessionId) || undefined, 5_000, "the engine to be told to close the shell");
  });

  it("ends a removed member's browser socket and shells", async () => {
    const developer = await memberWithPassword("DEVELOPER");
    const browser = await browserOf(developer);
    expect(await subscribe(browser)).toEqual({ ok: true });
    const opened = (await openShell(browser)) as { ok: true; sessionId: string };
    expect(opened.ok).toBe(true);
    const exit = exitOf(browser, opened.sessionId);
    const gone = disconnected(browser);

    const removal = await fetch(`${webA.url}/api/v1/members/${developer.userId}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${await org.apiToken("OWNER")}` },
    });
    expect(removal.status).toBe(200);
    expect((await within(exit, "the shell's end")).reason).toMatch(/access/i);
    await within(gone, "the disconnection");
    expect((await closedSession(opened.sessionId)).closeReason).toMatch(/access/i);
  });

  it("downgrades a demoted member's socket: shells end and no new one opens, watching goes on", async () => {
    const developer = await memberWithPassword("DEVELOPER");
    const browser = await browserOf(developer);
    const cli = await connect(webB.url, UI_NAMESPACE, { auth: { token: await developer.apiToken("DEVELOPER") } });
    const inBrowser = (await openShell(browser)) as { ok: true; sessionId: string };
    const inCli = (await openShell(cli)) as { ok: true; sessionId: string };
    expect([inBrowser.ok, inCli.ok]).toEqual([true, true]);
    const exits = [exitOf(browser, inBrowser.sessionId), exitOf(cli, inCli.sessionId)];

    const demotion = await fetch(`${webA.url}/api/v1/members/${developer.userId}`, {
      method: "PATCH",
      headers: { authorization: `Bearer ${await org.apiToken("OWNER")}`, "content-type": "application/json" },
      body: JSON.stringify({ role: "VIEWER" }),
    });
    expect(demotion.status).toBe(200);
    for (const exit of exits) expect((await within(exit, "the shell's end")).reason).toMatch(/role/i);
    expect(browser.connected && cli.connected).toBe(true);
    expect(await subscribe(browser)).toEqual({ ok: true });
    expect(await openShell(browser)).toMatchObject({ ok: false, code: "FORBIDDEN" });
    expect(await openShell(cli)).toMatchObject({ ok: false, code: "FORBIDDEN" });
  });

  it("checks every room join and shell open against the current state, even when no notification arrives", async () => {
    const developer = await memberWithPassword("DEVELOPER");
    const browser = await browserOf(developer);
    const cli = await connect(webB.url, UI_NAMESPACE, { auth: { token: await developer.apiToken("DEVELOPER") } });
    // Removed behind the web processes' backs: with triggers off, as if the notification were lost.
    await database.db.transaction(async (tx) => {
      await tx.execute("set local session_replication_role = replica");
      await tx.delete(memberships).where(and(eq(memberships.organizationId, org.organizationId), eq(memberships.userId, developer.userId)));
    });
    expect((await subscribe(browser)).ok).toBe(false);
    expect((await openShell(cli)).ok).toBe(false);
    await within(disconnected(browser), "the browser's disconnection");
    await within(disconnected(cli), "the CLI's disconnection");
  });

  it("refuses a session cookie sent from another origin, even a same-site one", async () => {
    const developer = await memberWithPassword("DEVELOPER");
    const cookie = await signIn(webB.url, developer.email);
    // An app deployed under the dashboard's domain is same-site: its pages carry the dashboard's cookie.
    await expect(connect(webB.url, UI_NAMESPACE, { headers: { cookie, origin: "http://my-app.localhost:8080" } })).rejects.toThrow(/origin/i);
    await expect(connect(webB.url, UI_NAMESPACE, { headers: { cookie } })).rejects.toThrow(/origin/i);
    const browser = await connect(webB.url, UI_NAMESPACE, { headers: { cookie, origin: webB.url } });
    expect(await subscribe(browser)).toEqual({ ok: true });
    // A token is no ambient credential: a client that holds one may connect from anywhere.
    const cli = await connect(webB.url, UI_NAMESPACE, {
      auth: { token: await developer.apiToken("VIEWER") },
      headers: { origin: "http://my-app.localhost:8080" },
    });
    expect(await subscribe(cli)).toEqual({ ok: true });
  });
});
