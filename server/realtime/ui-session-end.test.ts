import http from "node:http";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import pino from "pino";
import { io, type Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENGINE_NAMESPACE, PROTOCOL_VERSION } from "../../engine/protocol/messages";
import { createTestDatabase } from "../../test/database";
import { eventually } from "../../test/engine-harness";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { createCaller } from "../api/root";
import { hashPassword } from "../auth/passwords";
import type { Services } from "../context";
import { shellSessions, users } from "../db/schema";
import { startWebServer } from "../web-server";
import { UI_NAMESPACE, type AccessEnded, type ShellExitMessage, type ShellOpenAnswer } from "./ui-protocol";
import { cookieJar } from "../../test/support/browser-session";

/**
 * A session ended by a GitHub takeover (server/auth/github-sign-in.ts: the account's password is
 * removed, and every session signed in with it is over) ends its live connections too: its `/ui`
 * socket (live logs, statuses) and its shells, at once and on every web process. The address's
 * owner signs in with GitHub through web A; the password session's browser is connected to web B.
 */
const AUTH_SECRET = "test-secret-of-at-least-32-characters!!";
const PASSWORD = "the password someone else set";

/** GitHub's OAuth and REST endpoints (as in server/auth/github.test.ts): grants at once, as the account with `email` verified. */
async function startGitHub(email: string) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://github.test");
    const json = (body: unknown) => res.setHeader("content-type", "application/json").end(JSON.stringify(body));
    if (url.pathname === "/login/oauth/authorize") {
      const back = new URL(url.searchParams.get("redirect_uri")!);
      back.searchParams.set("code", "granted-code");
      back.searchParams.set("state", url.searchParams.get("state") ?? "");
      res.writeHead(302, { location: back.href }).end();
    } else if (url.pathname === "/login/oauth/access_token") json({ access_token: "gho_test", token_type: "bearer", scope: "read:user,user:email" });
    else if (url.pathname === "/api/v3/user") json({ login: "owner", id: 1, name: "The Owner", email: null });
    else if (url.pathname === "/api/v3/user/emails") json([{ email, primary: true, verified: true, visibility: "private" }]);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

let services: Services;
let org: SeededOrganization;
let github: Awaited<ReturnType<typeof startGitHub>>;
let webA: Awaited<ReturnType<typeof startWebServer>>;
let webB: Awaited<ReturnType<typeof startWebServer>>;
let serviceId: string;
let email: string;
const sockets: Socket[] = [];

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

beforeAll(async () => {
  const database = await createTestDatabase();
  services = testServices(database.db);
  org = await seedOrganization(services, "session-end");
  const member = await org.member("DEVELOPER");
  email = member.email;
  await services.db
    .update(users)
    .set({ passwordHash: await hashPassword(PASSWORD) })
    .where(eq(users.id, member.userId));
  github = await startGitHub(email);
  const start = (withGitHub: boolean) =>
    startWebServer({
      services,
      databaseUrl: database.url,
      logger: pino({ level: "silent" }),
      port: 0,
      host: "127.0.0.1",
      authSecret: AUTH_SECRET,
      ...(withGitHub ? { github: { clientId: "Iv1.test", clientSecret: "test-client-secret", enterpriseUrl: github.url } } : {}),
    });
  webA = await start(true);
  webB = await start(false);
  const api = createCaller({ services, actor: org.as("OWNER") });
  const project = await api.projects.create({ name: "shells" });
  const environment = await api.environments.create({ projectId: project.id, name: "dev" });
  serviceId = (await api.services.create({ environmentId: environment.id, name: "web", config: { git: { url: "file:///srv/app.git" } } })).id;
  // An engine that accepts shells, on web B.
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
  await github?.close();
});

async function passwordSignIn(url: string): Promise<string> {
  const jar = cookieJar();
  const csrf = await fetch(`${url}/api/auth/csrf`);
  jar.keep(csrf);
  const { csrfToken } = (await csrf.json()) as { csrfToken: string };
  const answer = await fetch(`${url}/api/auth/callback/credentials`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", cookie: jar.header() },
    body: new URLSearchParams({ csrfToken, email, password: PASSWORD }),
  });
  jar.keep(answer);
  expect(jar.header()).toMatch(/authjs\.session-token=/);
  return jar.header();
}

/** Slipway's sign-in with GitHub, GitHub's authorization page, Slipway's callback. */
async function gitHubSignIn(url: string): Promise<string> {
  const jar = cookieJar();
  const csrf = await fetch(`${url}/api/auth/csrf`);
  jar.keep(csrf);
  const { csrfToken } = (await csrf.json()) as { csrfToken: string };
  const start = await fetch(`${url}/api/auth/signin/github`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", cookie: jar.header() },
    body: new URLSearchParams({ csrfToken }),
  });
  jar.keep(start);
  const authorized = await fetch(start.headers.get("location")!, { redirect: "manual" });
  const callback = await fetch(authorized.headers.get("location")!, { redirect: "manual", headers: { cookie: jar.header() } });
  jar.keep(callback);
  expect(jar.header()).toMatch(/authjs\.session-token=/);
  return jar.header();
}

const subscribe = (socket: Socket) =>
  socket.timeout(10_000).emitWithAck("subscribe", { room: `service:${serviceId}` }) as Promise<{ ok: boolean; error?: string }>;
const disconnected = (socket: Socket) => new Promise<void>((resolve) => (socket.connected ? socket.once("disconnect", () => resolve()) : resolve()));
/** Fails quickly: the sockets are re-checked every minute anyway, so "eventually" is not what is tested. */
const within = <T>(promise: Promise<T>, what: string, ms = 5_000) =>
  Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms))]);

describe("a session ended by a GitHub takeover", () => {
  it("loses its live connection and its shells at once, on another web process; the owner's GitHub session stays", async () => {
    const cookie = await passwordSignIn(webB.url);
    const browser = await connect(webB.url, UI_NAMESPACE, { headers: { cookie, origin: webB.url } });
    expect(await subscribe(browser)).toEqual({ ok: true });
    const sessionId = randomUUID();
    const exit = new Promise<ShellExitMessage>((resolve) =>
      browser.on("shell:exit", (message: ShellExitMessage) => message.sessionId === sessionId && resolve(message)),
    );
    expect(await browser.timeout(20_000).emitWithAck("shell:open", { sessionId, serviceId })).toEqual({ ok: true, sessionId } satisfies ShellOpenAnswer);
    const gone = disconnected(browser);
    const accessEnded = new Promise<AccessEnded>((resolve) => browser.once("access:ended", resolve));
    const heard: string[] = [];
    browser.onAny((event: string) => heard.push(event));

    // The address's owner comes in with GitHub, through web A.
    const owners = await gitHubSignIn(webA.url);

    // Said as what happened (the user did not lose any access: they were signed out), not "access revoked".
    expect((await within(exit, "the shell's end")).reason).toMatch(/^signed out: the account was signed in with GitHub/);
    await within(gone, "the disconnection");
    // The tab hears why first, whatever else it shows (a live log has no shell to be told by).
    expect((await within(accessEnded, "the reason of the end of access")).reason).toMatch(/^signed out: the account was signed in with GitHub/);
    expect(heard.filter((event) => event === "access:ended" || event === "shell:exit")).toEqual(["access:ended", "shell:exit"]);
    const [row] = await eventually(
      async () => {
        const rows = await services.db.select().from(shellSessions).where(eq(shellSessions.id, sessionId));
        return rows[0]?.closedAt ? rows : undefined;
      },
      5_000,
      "the shell session to be closed",
    );
    expect(row!.closeReason).toMatch(/^signed out: the account was signed in with GitHub/);
    // Its reconnect is refused, as before, saying it is for want of a session (not a network failure).
    await expect(connect(webB.url, UI_NAMESPACE, { headers: { cookie, origin: webB.url } })).rejects.toMatchObject({
      message: expect.stringMatching(/sign in/i),
      data: { code: "UNAUTHORIZED" },
    });

    // The owner's own session is not one that ended: it connects, and stays when the sockets are re-checked.
    const owner = await connect(webB.url, UI_NAMESPACE, { headers: { cookie: owners, origin: webB.url } });
    expect(await subscribe(owner)).toEqual({ ok: true });
    expect(owner.connected).toBe(true);
  }, 60_000);
});
