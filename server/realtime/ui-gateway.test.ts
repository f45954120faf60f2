import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pino from "pino";
import { io, type Socket } from "socket.io-client";
import { createTestDatabase } from "../../test/database";
import { endConnectionsRunning } from "../../test/support/postgres-backends";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { ENGINE_NAMESPACE, PROTOCOL_VERSION } from "../../engine/protocol/messages";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { startWebServer } from "../web-server";
import { UI_NAMESPACE, type DeploymentChanged, type LogLines, type ServiceChanged } from "./ui-protocol";

let services: Services;
let org: SeededOrganization;
let web: Awaited<ReturnType<typeof startWebServer>>;
let databaseUrl: string;
let database: Awaited<ReturnType<typeof createTestDatabase>>;
const sockets: Socket[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  services = testServices(database.db);
  databaseUrl = database.url;
  org = await seedOrganization(services, "ui");
  web = await startWebServer({ services, databaseUrl: database.url, logger: pino({ level: "silent" }), port: 0, host: "127.0.0.1" });
});
afterAll(async () => {
  for (const socket of sockets) socket.disconnect();
  await web?.close();
});

function connect(namespace: string, auth: object, url = web.url): Promise<Socket> {
  const socket = io(`${url}${namespace}`, { auth, transports: ["websocket"], reconnection: false });
  sockets.push(socket);
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

const next = <T>(socket: Socket, name: string, accept: (payload: T) => boolean = () => true) =>
  new Promise<T>((resolve) => {
    const listener = (payload: T) => {
      if (!accept(payload)) return;
      socket.off(name, listener);
      resolve(payload);
    };
    socket.on(name, listener);
  });

describe("the /ui realtime namespace", () => {
  it("refuses a connection without credentials", async () => {
    await expect(connect(UI_NAMESPACE, {})).rejects.toThrow(/Sign in or pass an API token/);
    await expect(connect(UI_NAMESPACE, { token: "swp_wrong" })).rejects.toThrow(/revoked/);
  });

  it("streams a deployment's status changes and log lines to its subscribers, and only theirs", async () => {
    const api = createCaller({ services, actor: org.as("DEVELOPER") });
    const project = await api.projects.create({ name: "live" });
    const environment = await api.environments.create({ projectId: project.id, name: "dev" });
    const service = await api.services.create({ environmentId: environment.id, name: "web", config: { git: { url: "file:///srv/app.git" } } });
    const { deployment } = await api.deployments.create({ environmentId: environment.id, action: "DEPLOY" });

    const browser = await connect(UI_NAMESPACE, { token: await org.apiToken("VIEWER") });
    expect(await browser.emitWithAck("subscribe", { room: `deployment:${deployment.id}` })).toEqual({ ok: true });
    expect(await browser.emitWithAck("subscribe", { room: `environment:${environment.id}` })).toEqual({ ok: true });
    expect(await browser.emitWithAck("subscribe", { room: "deployment:00000000-0000-4000-8000-000000000000" })).toEqual({
      ok: false,
      error: "Deployment not found",
    });
    expect(await browser.emitWithAck("subscribe", { room: "everything" })).toEqual({ ok: false, error: "unknown room" });
    const stranger = await seedOrganization(services, "stranger");
    const outsider = await connect(UI_NAMESPACE, { token: await stranger.apiToken("OWNER") });
    expect((await outsider.emitWithAck("subscribe", { room: `deployment:${deployment.id}` })).ok).toBe(false);

    const engine = await connect(ENGINE_NAMESPACE, {
      token: org.engineToken,
      protocolVersion: PROTOCOL_VERSION,
      engineVersion: "test",
      capabilities: { runtime: "local", serviceKinds: ["APPLICATION"] },
    });
    const changed = next<DeploymentChanged>(browser, "deployment:changed", (c) => c.status === "BUILDING");
    const at = new Date().toISOString();
    await engine.emitWithAck("deployment:event", {
      deploymentId: deployment.id,
      events: [
        { seq: 1, serviceId: null, step: "deployment", status: "started", at },
        { seq: 2, serviceId: service.id, step: "build", status: "started", at },
      ],
    });
    expect(await changed).toMatchObject({ deploymentId: deployment.id, environmentId: environment.id, status: "BUILDING" });

    const streamed = next<LogLines>(browser, "log:lines");
    await engine.emitWithAck("log:batch", {
      stream: { kind: "deployment", deploymentId: deployment.id, serviceId: service.id },
      lines: [{ seq: 7, at, fd: "stdout", text: "\u001b[32mcompiled\u001b[0m" }],
    });
    expect(await streamed).toEqual({
      stream: `deployment:${deployment.id}`,
      lines: [{ seq: 7, at, fd: "stdout", text: "\u001b[32mcompiled\u001b[0m", deploymentId: deployment.id, serviceId: service.id }],
    });
  });

  it("gives each follower a batch of log lines once, whether it follows through the web process that stored it or another", async () => {
    const api = createCaller({ services, actor: org.as("DEVELOPER") });
    const project = await api.projects.create({ name: "two-nodes" });
    const environment = await api.environments.create({ projectId: project.id, name: "dev" });
    const service = await api.services.create({ environmentId: environment.id, name: "web", config: { git: { url: "file:///srv/app.git" } } });
    const other = await startWebServer({ services, databaseUrl, logger: pino({ level: "silent" }), port: 0, host: "127.0.0.1" });
    try {
      const token = await org.apiToken("VIEWER");
      const here = await connect(UI_NAMESPACE, { token });
      const there = await connect(UI_NAMESPACE, { token }, other.url);
      const seen = new Map<Socket, number[]>([
        [here, []],
        [there, []],
      ]);
      for (const [socket, seqs] of seen) {
        expect(await socket.emitWithAck("subscribe", { room: `service:${service.id}` })).toEqual({ ok: true });
        socket.on("log:lines", (batch: LogLines) => seqs.push(...batch.lines.map((line) => line.seq)));
      }
      const engine = await connect(ENGINE_NAMESPACE, {
        token: org.engineToken,
        protocolVersion: PROTOCOL_VERSION,
        engineVersion: "test",
        capabilities: { runtime: "local", serviceKinds: ["APPLICATION"] },
      });
      const send = async (seq: number) => {
        const arrived = [here, there].map((socket) => next<LogLines>(socket, "log:lines", (batch) => batch.lines.some((line) => line.seq === seq)));
        const at = new Date().toISOString();
        const lines = [{ seq, at, fd: "stdout", text: `line ${seq}` }];
        expect(await engine.emitWithAck("log:batch", { stream: { kind: "service", serviceId: service.id, releaseId: "r1" }, lines })).toEqual({ ok: true });
        await Promise.all(arrived);
      };
      // A socket receives in the order sent: once the second batch is in, a second copy of the first would be too.
      await send(1);
      await send(2);
      expect(seen.get(here)).toEqual([1, 2]);
      expect(seen.get(there)).toEqual([1, 2]);
    } finally {
      await other.close();
    }
  });

  it("tells every socket of the organization, unsubscribed, when a deployment is requested and when a report changes a service; no other organization", async () => {
    const api = createCaller({ services, actor: org.as("DEVELOPER") });
    const project = await api.projects.create({ name: "whole-org" });
    const environment = await api.environments.create({ projectId: project.id, name: "dev" });
    const service = await api.services.create({ environmentId: environment.id, name: "web", config: { git: { url: "file:///srv/app.git" } } });

    const member = await connect(UI_NAMESPACE, { token: await org.apiToken("VIEWER") });
    const stranger = await seedOrganization(services, "elsewhere");
    const outsider = await connect(UI_NAMESPACE, { token: await stranger.apiToken("OWNER") });
    const overheard: unknown[] = [];
    outsider.on("deployment:changed", (change) => overheard.push(change));
    outsider.on("service:changed", (change) => overheard.push(change));
    const serviceChanges: ServiceChanged[] = [];
    member.on("service:changed", (change: ServiceChanged) => serviceChanges.push(change));

    const queued = next<DeploymentChanged>(member, "deployment:changed", (c) => c.environmentId === environment.id);
    const { deployment } = await api.deployments.create({ environmentId: environment.id, action: "DEPLOY" });
    // With the statuses every page shows, as the server derives them.
    expect(await queued).toMatchObject({
      deploymentId: deployment.id,
      organizationId: org.organizationId,
      status: "QUEUED",
      environmentStatus: "QUEUED",
      services: [{ serviceId: service.id, status: "QUEUED" }],
    });

    const engine = await connect(ENGINE_NAMESPACE, {
      token: org.engineToken,
      protocolVersion: PROTOCOL_VERSION,
      engineVersion: "test",
      capabilities: { runtime: "local", serviceKinds: ["APPLICATION"] },
    });
    const report = (restarts: number) => ({ serviceId: service.id, releaseId: "r1", state: "running", restarts, commit: "abc123" });
    const first = next<ServiceChanged>(member, "service:changed", (c) => c.serviceId === service.id);
    await engine.emitWithAck("engine:heartbeat", { activeDeployments: [], services: [report(0)] });
    // Its deployment is still queued (no engine took it here): that is what its pages show.
    expect(await first).toEqual({ serviceId: service.id, environmentId: environment.id, organizationId: org.organizationId, status: "QUEUED" });
    // The same report again changes nothing a page shows; a restart does.
    await engine.emitWithAck("engine:heartbeat", { activeDeployments: [], services: [report(0)] });
    const restarted = next<ServiceChanged>(member, "service:changed", (c) => c.serviceId === service.id);
    await engine.emitWithAck("engine:heartbeat", { activeDeployments: [], services: [report(1)] });
    await restarted;
    expect(serviceChanges.filter((c) => c.serviceId === service.id)).toHaveLength(2);
    expect(overheard).toEqual([]);
  });
});

describe("a gap in this process's notifications", () => {
  const terminate = async (pattern: string) => expect(await endConnectionsRunning(database.pool, pattern)).toBeGreaterThan(0);

  it("tells its browsers to re-read when its listener or the realtime adapter listens again, and only then", async () => {
    const browser = await connect(UI_NAMESPACE, { token: await org.apiToken("VIEWER") });
    let resyncs = 0;
    browser.on("realtime:resync", () => resyncs++);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(resyncs).toBe(0);

    // The listener of Slipway's own channels (deployments, services, access): lowercase listen.
    const afterListener = next(browser, "realtime:resync");
    await terminate('listen "%');
    await afterListener;

    // The socket.io adapter's connection, which carries other processes' broadcasts.
    const afterAdapter = next(browser, "realtime:resync");
    await terminate('LISTEN "socket.io%');
    await afterAdapter;
    expect(browser.connected).toBe(true);
  }, 20_000);
});
