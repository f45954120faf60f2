/**
 * Shells and metrics through the control plane: a real web server (with its `/ui` and `/engine`
 * gateways and the socket.io Postgres adapter) on a real PostgreSQL, the real engine as its own
 * process with its router, a real app from git, clients on `/ui` with API tokens (as the CLI
 * connects), and the CLI itself.
 */
import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { and, eq } from "drizzle-orm";
import { testPort } from "../support/ports";
import pino from "pino";
import { io, type Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../cli/main";
import { createCaller } from "../../server/api/root";
import type { Services } from "../../server/context";
import { auditEvents, shellSessions } from "../../server/db/schema";
import { downsampleMetrics } from "../../server/metrics/metrics";
import type { ShellExitMessage, ShellOpenAnswer, ShellOutputMessage, UiClientEvents, UiServerEvents } from "../../server/realtime/ui-protocol";
import { startWebServer } from "../../server/web-server";
import { startWorker } from "../../worker/runner";
import { createTestDatabase, type TestDatabase } from "../database";
import { eventually, fixture, request } from "../engine-harness";
import { startGitServer, type GitServer } from "../git-server";
import { killProcessesUnder } from "../process-cleanup";
import { releaseCgroupsCleanup } from "../support/cgroups";
import { spawnEngine, type EngineProcess } from "../support/engine-process";
import { seedOrganization, testServices, type SeededOrganization } from "../support/seed";

type UiSocket = Socket<UiServerEvents, UiClientEvents>;

let database: TestDatabase;
let services: Services;
let org: SeededOrganization;
let web: Awaited<ReturnType<typeof startWebServer>>;
let worker: Awaited<ReturnType<typeof startWorker>>;
let git: GitServer;
let engine: EngineProcess;
let engineHome: string;
let routerPort: number;
let serviceId: string;
let tokens: { developer: string; viewer: string };
const sockets: UiSocket[] = [];
const HOST = "web-dev-shop.localhost";
const api = () => createCaller({ services, actor: org.as("DEVELOPER") });

async function connect(token: string): Promise<UiSocket> {
  const socket: UiSocket = io(`${web.url}/ui`, { auth: { token }, transports: ["websocket"], reconnection: false });
  sockets.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
  return socket;
}

/** A shell session as a client sees it: output in order, and its exit. */
function session(socket: UiSocket, sessionId = randomUUID()) {
  const chunks = new Map<number, string>();
  let exit: ShellExitMessage | null = null;
  socket.on("shell:output", (message: ShellOutputMessage) => {
    if (message.sessionId === sessionId) chunks.set(message.seq, message.data);
  });
  socket.on("shell:exit", (message) => {
    if (message.sessionId === sessionId) exit = message;
  });
  const text = () =>
    [...chunks.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, data]) => data)
      .join("");
  return {
    sessionId,
    text,
    open: (extra: { cols?: number; rows?: number; argv?: string[] } = {}) =>
      socket.timeout(20_000).emitWithAck("shell:open", { sessionId, serviceId, cols: 80, rows: 24, ...extra }) as Promise<ShellOpenAnswer>,
    type: (data: string) => socket.emit("shell:input", { sessionId, data }),
    resize: (cols: number, rows: number) => socket.emit("shell:resize", { sessionId, cols, rows }),
    waitFor: (needle: string, what = needle) => eventually(() => text().includes(needle), 10_000, what),
    exited: () => eventually(() => exit, 10_000, "the shell's exit"),
  };
}

const auditOf = (action: string) =>
  services.db
    .select()
    .from(auditEvents)
    .where(and(eq(auditEvents.organizationId, org.organizationId), eq(auditEvents.action, action)));

beforeAll(async () => {
  database = await createTestDatabase();
  services = testServices(database.db);
  org = await seedOrganization(services, "shells");
  tokens = { developer: await org.apiToken("DEVELOPER"), viewer: await org.apiToken("VIEWER") };
  const webPort = await testPort();
  routerPort = await testPort();
  engineHome = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-shells-engine-"));
  git = await startGitServer();
  await git.createRepo("shop", fixture("memory-hog"));
  web = await startWebServer({
    services,
    databaseUrl: database.url,
    logger: pino({ level: "silent" }),
    port: webPort,
    host: "127.0.0.1",
    shellIdleTimeoutSeconds: 60,
  });
  worker = await startWorker({ services, connectionString: database.url, logger: pino({ level: "silent" }), reconcileIntervalMs: 500 });
  engine = spawnEngine({ url: web.url, token: org.engineToken, home: engineHome, routerPort, env: { SLIPWAY_METRICS_SECONDS: "1" } });

  const project = await api().projects.create({ name: "shop" });
  const environment = await api().environments.create({ projectId: project.id, name: "dev" });
  const service = await api().services.create({
    environmentId: environment.id,
    name: "web",
    config: { git: { url: git.url("shop"), ref: { branch: "main" } }, healthCheckPath: "/health", startCommand: "node server.js" },
  });
  serviceId = service.id;
  await api().variables.set({ scope: "SERVICE", targetId: service.id, key: "GREETING", value: "hello from the service", secret: false });
  const { deployment } = await api().deployments.create({ environmentId: environment.id, action: "DEPLOY" });
  const done = await eventually(
    async () => {
      const current = await api().deployments.get({ deploymentId: deployment.id });
      return ["DEPLOYED", "BUILD_ERROR", "DEPLOYMENT_ERROR"].includes(current.status) ? current : undefined;
    },
    90_000,
    "the deployment",
  );
  expect(done.status, `${done.statusMessage}\n${engine.output().slice(-3000)}`).toBe("DEPLOYED");
}, 120_000);

afterAll(async () => {
  for (const socket of sockets) socket.disconnect();
  await engine?.stop("SIGKILL");
  await worker?.stop();
  await web?.close();
  await git?.close();
  if (engineHome) {
    const removeCgroups = releaseCgroupsCleanup(engineHome);
    await killProcessesUnder(engineHome);
    removeCgroups();
    await fs.rm(engineHome, { recursive: true, force: true });
  }
});

describe("remote shell through the control plane", () => {
  it("opens a terminal in the release directory with the service's variables, resizes it, and relays the exit code", async () => {
    const socket = await connect(tokens.developer);
    const shell = session(socket);
    expect(await shell.open({ cols: 100, rows: 30 })).toEqual({ ok: true, sessionId: shell.sessionId });
    shell.type('pwd; echo "greeting=$GREETING"; stty size\n');
    await shell.waitFor("30 100", "stty size 30 100");
    expect(shell.text()).toContain("greeting=hello from the service");
    expect(shell.text()).toMatch(new RegExp(`${engineHome}/services/${serviceId}/releases/[^/\\s]+/src`));

    shell.resize(120, 40);
    shell.type("stty size\n");
    await shell.waitFor("40 120", "stty size after the resize");
    shell.type("echo secret-marker-$((6*7)); exit 5\n");
    await shell.waitFor("secret-marker-42");
    expect(await shell.exited()).toMatchObject({ code: 5 });

    // Audited: who, which service, when, how it ended; never what was typed or shown.
    const closed = await eventually(
      async () => (await auditOf("shell.close")).find((event) => event.changes?.sessionId === shell.sessionId),
      5_000,
      "shell.close",
    );
    const opened = (await auditOf("shell.open")).find((event) => event.changes?.sessionId === shell.sessionId);
    expect(opened).toMatchObject({ targetType: "service", targetId: serviceId, actorType: "token", origin: "CLI" });
    expect(opened!.changes).toMatchObject({ mode: "interactive", startedAt: expect.any(String) });
    expect(closed.changes).toMatchObject({ exitCode: 5, durationMs: expect.any(Number), endedAt: expect.any(String) });
    const everything = JSON.stringify([opened, closed]);
    for (const content of ["secret-marker", "stty", "greeting", "hello from the service"]) expect(everything).not.toContain(content);
  });

  it("runs several sessions at once", async () => {
    const socket = await connect(tokens.developer);
    const [first, second] = [session(socket), session(socket)];
    expect((await Promise.all([first.open(), second.open()])).map((answer) => answer.ok)).toEqual([true, true]);
    first.type("echo one-$((1+1))\n");
    second.type("echo two-$((2+2))\n");
    await Promise.all([first.waitFor("one-2"), second.waitFor("two-4")]);
    expect(first.text()).not.toContain("two-4");
    first.type("exit 0\n");
    second.type("exit 1\n");
    expect((await first.exited()).code).toBe(0);
    expect((await second.exited()).code).toBe(1);
  });

  it("counts only live sessions toward a connection's limit: a browser tab opens shell after shell as each one exits", async () => {
    const socket = await connect(tokens.developer);
    // More than the 16 a connection may hold at once, one after the other, each ended by its own process.
    for (let run = 0; run < 18; run++) {
      const shell = session(socket);
      expect(await shell.open({ argv: ["sh", "-c", `echo run-${run}`] }), `session ${run + 1}`).toEqual({ ok: true, sessionId: shell.sessionId });
      await shell.waitFor(`run-${run}`);
      expect((await shell.exited()).code).toBe(0);
    }
  });

  it("refuses a VIEWER before anything reaches the engine", async () => {
    const socket = await connect(tokens.viewer);
    const shell = session(socket);
    const answer = await shell.open();
    expect(answer).toMatchObject({ ok: false, code: "FORBIDDEN" });
    expect(await services.db.select().from(shellSessions).where(eq(shellSessions.id, shell.sessionId))).toEqual([]);
    expect((await auditOf("shell.open")).some((event) => event.changes?.sessionId === shell.sessionId)).toBe(false);
  });

  it("ends the session when the client disconnects, and audits it", async () => {
    const socket = await connect(tokens.developer);
    const shell = session(socket);
    expect((await shell.open()).ok).toBe(true);
    shell.type("echo ready\n");
    await shell.waitFor("ready");
    socket.disconnect();
    const closed = await eventually(
      async () => (await auditOf("shell.close")).find((event) => event.changes?.sessionId === shell.sessionId),
      10_000,
      "shell.close",
    );
    expect(closed.changes).toMatchObject({ sessionId: shell.sessionId, reason: "closed by the client" });
    const [row] = await services.db.select().from(shellSessions).where(eq(shellSessions.id, shell.sessionId));
    expect(row?.closedAt).not.toBeNull();
  });

  it("slipway shell … -- <command> prints its output and exits with the remote exit code", async () => {
    const env = { SLIPWAY_URL: web.url, SLIPWAY_TOKEN: tokens.developer, HOME: engineHome };
    let stdout = "";
    let stderr = "";
    const io = { stdout: { write: (chunk: string) => (stdout += chunk) }, stderr: { write: (chunk: string) => (stderr += chunk) }, env };
    expect(await runCli(["shell", "shop/dev/web", "--", "sh", "-c", 'echo "from $GREETING"; exit 3'], io)).toBe(3);
    expect(stdout).toContain("from hello from the service");
    expect(await runCli(["shell", "shop/dev/web", "--", "true"], io)).toBe(0);

    stderr = "";
    const viewer = { ...io, env: { ...env, SLIPWAY_TOKEN: tokens.viewer } };
    expect(await runCli(["shell", "shop/dev/web", "--", "true"], viewer)).toBe(4);
    expect(stderr).toContain("DEVELOPER");
  });
});

describe("metrics through the control plane", () => {
  it("stores request rate, latency and memory as the engine samples them, and serves them to the dashboard and the CLI", async () => {
    for (let i = 0; i < 300; i++) await request(routerPort, HOST);
    await request(routerPort, HOST, "/alloc?mb=120");
    const busy = await eventually(
      async () => {
        // Traffic in every sampling window, however slow the machine: the newest sample must show
        // both the requests and the allocation, and a window without requests would show none.
        for (let i = 0; i < 20; i++) await request(routerPort, HOST);
        const { sample } = await api().metrics.current({ serviceId });
        return sample && sample.requestsPerSecond > 0 && sample.memoryBytes > 120 * 1024 * 1024 ? sample : undefined;
      },
      30_000,
      "a sample with traffic and the allocated memory",
    );
    expect(busy.p50Ms).not.toBeNull();
    expect(busy.p99Ms).toBeGreaterThanOrEqual(busy.p50Ms!);
    expect(busy.restarts).toBe(0);

    const series = await createCaller({ services, actor: org.as("VIEWER") }).metrics.series({ serviceId, window: "15m" });
    expect(series.length).toBeGreaterThan(1);
    expect(series.some((point) => point.requestsPerSecond > 0)).toBe(true);

    let stdout = "";
    const io = {
      stdout: { write: (chunk: string) => (stdout += chunk) },
      stderr: { write: () => true },
      env: { SLIPWAY_URL: web.url, SLIPWAY_TOKEN: tokens.viewer, HOME: engineHome },
    };
    expect(await runCli(["metrics", "shop/dev/web"], io)).toBe(0);
    expect(stdout).toMatch(/Memory\s+\d+\.\d MiB/);
    expect(stdout).toMatch(/Requests\s+\d+\.\d\d\/s/);
  });

  it("rolls raw samples up into minute averages and keeps them for long windows", async () => {
    const later = { ...services, now: () => new Date(Date.now() + 3 * 60_000) };
    const first = await downsampleMetrics(later);
    expect(first.rolledUp).toBeGreaterThan(0);
    // Idempotent: the minutes already rolled up are not rolled up again.
    expect((await downsampleMetrics(later)).rolledUp).toBe(0);
    const day = await api().metrics.series({ serviceId, window: "24h" });
    expect(day.length).toBeGreaterThan(0);
    expect(day.some((point) => point.memoryBytes > 0)).toBe(true);

    const muchLater = { ...services, now: () => new Date(Date.now() + 25 * 3600_000) };
    expect((await downsampleMetrics(muchLater)).deletedRaw).toBeGreaterThan(0);
  });
});
