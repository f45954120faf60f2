/**
 * Scale-out (issue 17, items 1 to 3): two web processes behind Debian's HAProxy with the
 * project's own deploy/haproxy.cfg (no sticky sessions), two worker processes and the real
 * engine as its own process, all on one PostgreSQL, as `npm run web`, `npm run worker` and
 * `npm run engine` start them. Live streams cross nodes through PostgreSQL; a web process killed
 * mid-deployment costs the engine and a browser-side client a reconnect through HAProxy and
 * nothing else; a killed worker's jobs are run by the other.
 *
 * The engine connects through HAProxy while only web A runs, so it is on A; web B starts after.
 */
import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { and, asc, eq, ne } from "drizzle-orm";
import { testPort } from "../support/ports";
import { io, type Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCaller } from "../../server/api/root";
import type { Services } from "../../server/context";
import { requestDispatch } from "../../server/deployments/dispatch-job";
import { deploymentEvents, logLines, shellSessions } from "../../server/db/schema";
import type { DeploymentChanged, ShellExitMessage, ShellOpenAnswer, UiClientEvents, UiServerEvents } from "../../server/realtime/ui-protocol";
import { generateKey } from "../../server/secrets/envelope";
import { createMasterKeyring } from "../../server/secrets/keyring";
import { createTestDatabase, type TestDatabase } from "../database";
import { eventually, fixture } from "../engine-harness";
import { startGitServer, type GitServer } from "../git-server";
import { killProcessesUnder } from "../process-cleanup";
import { releaseCgroupsCleanup } from "../support/cgroups";
import { deploymentEnding } from "../support/control-plane";
import { spawnControlPlaneProcess, type ControlPlaneProcess } from "../support/control-plane-process";
import { spawnEngine, type EngineProcess } from "../support/engine-process";
import { startHaproxy, type Haproxy } from "../support/haproxy";
import { seedOrganization, testServices, type SeededOrganization } from "../support/seed";

type UiSocket = Socket<UiServerEvents, UiClientEvents>;

const BUILD_LINES = 40;
/** A build that writes numbered lines for about four seconds: long enough to kill a web process in the middle. */
const BUILD_COMMAND = `for i in $(seq 1 ${BUILD_LINES}); do echo "scale line $i"; sleep 0.1; done`;
/** Within seconds: HAProxy's checks take two (inter 1s, fall 2); socket.io's reconnection adds at most one. */
const RECONNECT_BOUND_MS = 10_000;
/** Well under the 15 s a shell's open waits for answers from every web process counted. */
const SHELL_OPEN_BOUND_MS = 5_000;

let database: TestDatabase;
let services: Services;
let org: SeededOrganization;
let token: string;
let git: GitServer;
let haproxy: Haproxy;
let webA: ControlPlaneProcess;
let webB: ControlPlaneProcess;
let startWebB: () => ControlPlaneProcess;
let workers: ControlPlaneProcess[];
let engine: EngineProcess;
let engineHome: string;
let engineReadyUrl: string;
let ids: { environmentId: string; serviceId: string };
/** A browser-side client connected through HAProxy while only web A ran. */
let follower: ReturnType<typeof followDeployments>;
const sockets: UiSocket[] = [];
const api = () => createCaller({ services, actor: org.as("DEVELOPER") });

beforeAll(async () => {
  database = await createTestDatabase();
  const masterKey = generateKey();
  services = testServices(database.db, { keyring: createMasterKeyring(masterKey), leaseSeconds: 10 });
  org = await seedOrganization(services, "scale");
  token = await org.apiToken("DEVELOPER");
  git = await startGitServer();
  await git.createRepo("shop", fixture("node-app"), { "version.txt": "1\n" });
  const [portA, portB, routerPort, enginePort, ...workerPorts] = await Promise.all([testPort(), testPort(), testPort(), testPort(), testPort(), testPort()]);
  engineReadyUrl = `http://127.0.0.1:${enginePort}/api/health/ready`;
  const home = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-scale-"));
  engineHome = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-scale-engine-"));

  haproxy = await startHaproxy([portA!, portB!]);
  const shared = {
    DATABASE_URL: database.url,
    SLIPWAY_MASTER_KEY: masterKey.toString("base64"),
    AUTH_SECRET: "scale-out-test-secret-of-32-characters",
    SLIPWAY_HOME: home,
    SLIPWAY_URL: haproxy.url,
    SLIPWAY_LEASE_SECONDS: "10",
    // No production build of the dashboard in this test: the API, sockets and webhooks only.
    SLIPWAY_WEB_UI: "0",
    SLIPWAY_TRUST_PROXY: "1",
    // Longer than HAProxy takes to see readiness fail (inter 1s, fall 2), with a margin.
    SLIPWAY_DRAIN_SECONDS: "5",
    // An orphaned shell ends after three missed keepalives: 3 s here, 60 s by default.
    SLIPWAY_SHELL_KEEPALIVE_SECONDS: "1",
  };
  webA = spawnControlPlaneProcess("web", { port: portA!, env: { ...shared, PGAPPNAME: "slipway-web-a" } });
  workers = workerPorts.map((port, index) =>
    // debug: graphile-worker's "Completed task" lines, which show which worker ran a job.
    spawnControlPlaneProcess("worker", { port: port!, env: { ...shared, LOG_LEVEL: "debug", PGAPPNAME: `slipway-worker-${index + 1}` } }),
  );
  await webA.ready();
  await haproxy.waitFor("web1", "UP");

  engine = spawnEngine({
    url: haproxy.url,
    token: org.engineToken,
    home: engineHome,
    routerPort: routerPort!,
    env: { SLIPWAY_ENGINE_HEALTH_PORT: String(enginePort) },
  });
  await eventually(() => webA.output().includes('"msg":"engine connected"'), 30_000, `the engine to connect to web A\n${engine.output()}`);
  follower = followDeployments(await connect(haproxy.url, { reconnection: true }));

  startWebB = () => spawnControlPlaneProcess("web", { port: portB!, env: { ...shared, PGAPPNAME: "slipway-web-b" } });
  webB = startWebB();
  await Promise.all([webB.ready(), ...workers.map((worker) => worker.ready())]);
  await haproxy.waitFor("web2", "UP");

  const project = await api().projects.create({ name: "shop" });
  const environment = await api().environments.create({ projectId: project.id, name: "dev" });
  const service = await api().services.create({
    environmentId: environment.id,
    name: "web",
    config: { git: { url: git.url("shop"), ref: { branch: "main" } }, healthCheckPath: "/health", buildCommand: BUILD_COMMAND },
  });
  ids = { environmentId: environment.id, serviceId: service.id };
}, 180_000);

afterAll(async () => {
  for (const socket of sockets) socket.disconnect();
  await engine?.stop("SIGKILL");
  await Promise.all([webA, webB, ...(workers ?? [])].map((process) => process?.stop()));
  await haproxy?.stop();
  await git?.close();
  if (engineHome) {
    const removeCgroups = releaseCgroupsCleanup(engineHome);
    await killProcessesUnder(engineHome);
    removeCgroups();
    await fs.rm(engineHome, { recursive: true, force: true });
  }
}, 60_000);

function connect(url: string, options: { reconnection: boolean }): Promise<UiSocket> {
  // As the dashboard and the CLI connect: WebSocket only, which is what lets HAProxy balance without sticky sessions.
  const socket: UiSocket = io(`${url}/ui`, {
    auth: { token },
    transports: ["websocket"],
    forceNew: true,
    reconnection: options.reconnection,
    reconnectionDelay: 200,
    reconnectionDelayMax: 1_000,
  });
  sockets.push(socket);
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

async function rest<T>(urlPath: string): Promise<T> {
  const response = await fetch(`${haproxy.url}/api/v1${urlPath}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`GET ${urlPath} answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}

/**
 * What the dashboard's deployment page does (components/realtime.tsx): joins the deployment's
 * room, appends the log lines it is sent, and after every (re)connect joins again and reads
 * what it missed from the API ("after seq N"), through HAProxy. Keeps apart what came live.
 */
function followDeployments(socket: UiSocket) {
  let deploymentId: string | null = null;
  const lines = new Map<number, string>();
  const live = new Set<number>();
  const changes: DeploymentChanged[] = [];
  const connects: number[] = [];
  let catchingUp = Promise.resolve();

  const catchUp = () => {
    catchingUp = catchingUp.then(async () => {
      if (!deploymentId) return;
      for (;;) {
        const after = Math.max(0, ...lines.keys());
        const page = await rest<Array<{ seq: number; text: string }>>(`/logs?deploymentId=${deploymentId}&after=${after}&limit=1000`);
        for (const line of page) lines.set(line.seq, line.text);
        if (page.length < 1000) return;
      }
    });
    return catchingUp;
  };
  const join = () =>
    socket
      .timeout(10_000)
      .emitWithAck("subscribe", { room: `deployment:${deploymentId!}` })
      .then(catchUp);
  socket.on("connect", () => {
    connects.push(Date.now());
    if (deploymentId) void join();
  });
  socket.on("log:lines", (batch) => {
    if (batch.stream !== `deployment:${deploymentId}`) return;
    for (const line of batch.lines) {
      lines.set(line.seq, line.text);
      live.add(line.seq);
    }
  });
  socket.on("deployment:changed", (change) => {
    if (change.deploymentId === deploymentId) changes.push(change);
  });
  return {
    socket,
    lines,
    live,
    changes,
    connects,
    async follow(id: string) {
      deploymentId = id;
      lines.clear();
      live.clear();
      changes.length = 0;
      await join();
    },
    catchUp,
  };
}

const storedLines = async (deploymentId: string) =>
  database.db.select({ seq: logLines.seq, text: logLines.text }).from(logLines).where(eq(logLines.deploymentId, deploymentId)).orderBy(asc(logLines.seq));
const storedEvents = async (deploymentId: string) =>
  database.db
    .select()
    .from(deploymentEvents)
    .where(and(eq(deploymentEvents.deploymentId, deploymentId), ne(deploymentEvents.step, "lease")))
    .orderBy(asc(deploymentEvents.id));
const buildLines = (texts: Iterable<string>) => [...texts].filter((text) => text.startsWith("scale line "));
const everyBuildLine = Array.from({ length: BUILD_LINES }, (_, index) => `scale line ${index + 1}`);
const STEPS = [
  "deployment:started",
  ...["clone", "build", "start", "health_check", "switch", "drain"].flatMap((step) => [`${step}:started`, `${step}:succeeded`]),
  "deployment:succeeded",
];

/** Opens a shell in the service through the web process at `url`, within `openTimeoutMs`. */
async function openShell(url: string, openTimeoutMs: number) {
  const socket = await connect(url, { reconnection: false });
  const sessionId = randomUUID();
  const output = new Map<number, string>();
  let exit: ShellExitMessage | null = null;
  socket.on("shell:output", (message) => message.sessionId === sessionId && output.set(message.seq, message.data));
  socket.on("shell:exit", (message) => {
    if (message.sessionId === sessionId) exit = message;
  });
  const answer = (await socket
    .timeout(openTimeoutMs)
    .emitWithAck("shell:open", { sessionId, serviceId: ids.serviceId, cols: 80, rows: 24 })) as ShellOpenAnswer;
  expect(answer).toEqual({ ok: true, sessionId });
  return {
    socket,
    sessionId,
    text: () =>
      [...output.entries()]
        .sort(([a], [b]) => a - b)
        .map(([, data]) => data)
        .join(""),
    exit: () => exit,
  };
}

/** Opens a shell through the web process at `url` and runs a command in it: its output and exit code come back through that process. */
async function shellRoundTrip(url: string, openTimeoutMs: number) {
  const shell = await openShell(url, openTimeoutMs);
  shell.socket.emit("shell:input", { sessionId: shell.sessionId, data: "echo across-nodes-$((6*7)); exit 3\n" });
  await eventually(() => shell.text().includes("across-nodes-42"), 20_000, "the shell's output").catch((error: Error) => {
    throw new Error(
      `${error.message}\nshell so far: ${JSON.stringify(shell.text())}\nengine: ${engine.output().slice(-2000)}\nweb A: ${webA.output().slice(-2000)}\nweb B: ${webB.output().slice(-2000)}`,
    );
  });
  expect((await eventually(shell.exit, 10_000, "the shell's exit"))?.code).toBe(3);
  shell.socket.disconnect();
}

const deploy = async () => (await api().deployments.create({ environmentId: ids.environmentId, action: "DEPLOY" })).deployment.id;
const ended = (deploymentId: string, expected = ["DEPLOYED"]) => deploymentEnding(api(), deploymentId, expected, 90_000, () => engine.output());

describe("two web processes behind HAProxy, two workers, one engine, one PostgreSQL", () => {
  it("answers liveness and readiness on every process, each says it is ready over IPC, and HAProxy sees both web processes up", async () => {
    for (const process of [webA, webB, ...workers]) {
      expect((await fetch(process.healthUrl.replace(/ready$/, "live"))).status).toBe(200);
      const ready = await fetch(process.healthUrl);
      expect({ status: ready.status, body: await ready.json() }).toEqual({ status: 200, body: { ok: true, database: "up" } });
      // What npm start's supervisor hears: a ready process's exits never add up to a crash loop.
      expect(process.saidReady()).toBe(true);
    }
    expect(await haproxy.states()).toEqual({ web1: "UP", web2: "UP" });
    // The engine's: ready while the control plane holds its connection.
    expect((await fetch(engineReadyUrl.replace(/ready$/, "live"))).status).toBe(200);
    expect(await (await fetch(engineReadyUrl)).json()).toEqual({ ok: true, controlPlane: "connected" });
  });

  it("streams a deployment whose engine is on web A to a client of web B, live, every line and the final status", async () => {
    const onB = followDeployments(await connect(webB.url, { reconnection: false }));
    const deploymentId = await deploy();
    await onB.follow(deploymentId);
    await ended(deploymentId);
    const stored = await storedLines(deploymentId);
    expect(buildLines(stored.map((line) => line.text))).toEqual(everyBuildLine);
    // Every stored line reached web B's client as it was produced (the catch-up after joining had nothing to add but what preceded it).
    await eventually(
      () => buildLines(stored.filter((line) => onB.live.has(line.seq)).map((line) => line.text)).length === BUILD_LINES,
      10_000,
      "every build line live on web B",
    );
    const events = await storedEvents(deploymentId);
    await eventually(() => onB.changes.at(-1)?.status === "DEPLOYED", 10_000, "the DEPLOYED status on web B");
    expect(onB.changes.at(-1)!.lastEventId).toBe(events.at(-1)!.id);
    // Produced on A: the engine's only connection is there.
    expect(webB.output()).not.toContain('"msg":"engine connected"');
  });

  it("opens a shell through web B in the service running under the engine connected to web A", async () => {
    await shellRoundTrip(webB.url, 20_000);
  });

  it("ends a shell whose client's web process is killed: the engine stops hearing its keepalives, and the session is closed", async () => {
    const shell = await openShell(webB.url, 20_000);
    shell.socket.emit("shell:input", { sessionId: shell.sessionId, data: "echo still-here\n" });
    await eventually(() => shell.text().includes("still-here"), 20_000, "the shell's output");
    // SIGKILL: web B cannot close the session, tell the engine, or write the row.
    await webB.stop("SIGKILL");
    const closed = await eventually(
      async () => {
        const [row] = await database.db.select().from(shellSessions).where(eq(shellSessions.id, shell.sessionId));
        return row?.closedAt ? row : undefined;
      },
      // Three missed keepalives (SLIPWAY_SHELL_KEEPALIVE_SECONDS=1), then the exit through web A.
      15_000,
      "the engine to end the orphaned shell and web A to close its row",
    );
    expect(closed.closeReason).toBe("its client's web process fell silent (nothing heard for 3 seconds)");
    shell.socket.disconnect();

    webB = startWebB();
    await webB.ready();
    await haproxy.waitFor("web2", "UP");
  });

  it("keeps each process within the connections deploy/README.md counts for it", async () => {
    // Each process names its connections (PGAPPNAME); the bounds are the defaults' sums in the guide.
    const { rows } = await database.pool.query<{ name: string; connections: number }>(
      "select application_name as name, count(*)::int as connections from pg_stat_activity where datname = current_database() and application_name like 'slipway-%' group by 1",
    );
    const counts = Object.fromEntries(rows.map((row) => [row.name, row.connections]));
    console.log(`connections per process: ${JSON.stringify(counts)}`);
    expect(Object.keys(counts).sort()).toEqual(["slipway-web-a", "slipway-web-b", "slipway-worker-1", "slipway-worker-2"]);
    for (const web of ["slipway-web-a", "slipway-web-b"]) expect(counts[web]).toBeLessThanOrEqual(17);
    for (const worker of ["slipway-worker-1", "slipway-worker-2"]) expect(counts[worker]).toBeLessThanOrEqual(21);
  });

  it("restarts web B (SIGTERM, then a new process) while requests flow through HAProxy, failing none: a rolling upgrade's step", async () => {
    let looping = true;
    let requests = 0;
    const failures: string[] = [];
    const loop = (async () => {
      while (looping) {
        requests++;
        try {
          const response = await fetch(`${haproxy.url}/api/v1/projects`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5_000) });
          const body = await response.text();
          if (response.status !== 200) failures.push(`${response.status} ${body.slice(0, 200)}`);
        } catch (error) {
          failures.push(String(error));
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    try {
      const stopped = webB.stop("SIGTERM");
      // Draining: not ready, still serving, taken out by HAProxy before it closes.
      const draining = await eventually(
        async () => {
          const response = await fetch(webB.healthUrl);
          return response.status === 503 ? await response.json() : undefined;
        },
        5_000,
        "web B's readiness to fail",
      );
      expect(draining).toEqual({ ok: false, database: "up", stopping: true });
      await haproxy.waitFor("web2", "DOWN");
      expect(webB.child.exitCode).toBeNull();
      expect(await stopped).toBe(0);
      webB = startWebB();
      await webB.ready();
      await haproxy.waitFor("web2", "UP");
    } finally {
      looping = false;
      await loop;
    }
    expect(failures).toEqual([]);
    expect(requests).toBeGreaterThan(50);
  });

  it("survives web A killed mid-deployment: the engine and the browser reconnect through HAProxy within seconds, and nothing is lost", async () => {
    const deploymentId = await deploy();
    await follower.follow(deploymentId);
    // Killed while the build writes its lines, with some already streamed to the browser through A.
    await eventually(() => buildLines(follower.lines.values()).length >= 10, 60_000, "the build to be under way");
    const connectsBefore = follower.connects.length;
    // A shell through web B into the engine on web A: its engine ends it when A dies, and cannot say so.
    const orphaned = await openShell(webB.url, 20_000);
    const killedAt = Date.now();
    await webA.stop("SIGKILL");

    const engineBack = await eventually(
      () => (webB.output().includes('"msg":"engine connected"') ? Date.now() : undefined),
      RECONNECT_BOUND_MS,
      "the engine on web B",
    );
    const browserBack = await eventually(() => follower.connects[connectsBefore], RECONNECT_BOUND_MS, "the browser's reconnect");
    console.log(`web A killed: engine back after ${engineBack - killedAt} ms, browser after ${browserBack - killedAt} ms`);
    expect(engineBack - killedAt).toBeLessThan(RECONNECT_BOUND_MS);
    expect(browserBack - killedAt).toBeLessThan(RECONNECT_BOUND_MS);
    // Web B still counts A (until A's heartbeats time out, 10 s after its last): a shell that
    // the engine accepts opens at once all the same, without waiting for an answer from A.
    await shellRoundTrip(webB.url, SHELL_OPEN_BOUND_MS);
    await haproxy.waitFor("web1", "DOWN");
    expect((await fetch(engineReadyUrl)).status).toBe(200);

    await ended(deploymentId);
    // Every event, in order, each once; every build line each once, in the database and in the browser.
    expect((await storedEvents(deploymentId)).map((event) => `${event.step}:${event.status}`)).toEqual(STEPS);
    const stored = await storedLines(deploymentId);
    expect(buildLines(stored.map((line) => line.text))).toEqual(everyBuildLine);
    await eventually(() => follower.changes.at(-1)?.status === "DEPLOYED", 10_000, "the DEPLOYED status in the browser");
    // The deployment's last lines (the switch, the drain) may be stored after its status: once
    // everything is stored, the browser holds every line, each once, in order.
    const inBrowser = () => [...follower.lines.entries()].sort(([a], [b]) => a - b);
    const everything = async () => (await storedLines(deploymentId)).map((line) => [line.seq, line.text]);
    await eventually(
      async () => {
        await follower.catchUp();
        return JSON.stringify(inBrowser()) === JSON.stringify(await everything()) || undefined;
      },
      10_000,
      "the browser to hold every stored line",
    ).catch(() => undefined);
    expect(inBrowser()).toEqual(await everything());
    // The rest still came live, through web B after the reconnect.
    const last = stored.find((line) => line.text === `scale line ${BUILD_LINES}`)!;
    expect(follower.live.has(last.seq)).toBe(true);

    // The shell A held the engine's end of: closed by web B once the engine reconnected (20 s
    // later), its client told and its row closed, not left open for good.
    const reason = "the engine lost its connection to the control plane or restarted";
    expect(await eventually(orphaned.exit, 40_000, "the orphaned shell's exit")).toMatchObject({ code: null, reason });
    const [row] = await database.db.select().from(shellSessions).where(eq(shellSessions.id, orphaned.sessionId));
    expect(row).toMatchObject({ closedAt: expect.any(Date), closeReason: reason });
    orphaned.socket.disconnect();
  }, 90_000);

  it("runs a killed worker's jobs on the other worker", async () => {
    const [killed, survivor] = workers as [ControlPlaneProcess, ControlPlaneProcess];
    await killed.stop("SIGKILL");
    const before = survivor.output().length;
    // The first is leased by its request; the second, asked for while the first runs, by the
    // first one's end: neither waits for a worker.
    const first = await deploy();
    const second = await deploy();
    await ended(first);
    await ended(second);
    // A job: the environment's dispatch job, as the sweep of queues left waiting adds it.
    await requestDispatch(services.db, ids.environmentId);
    await eventually(() => /Completed task \d+ \(dispatch_deployment/.test(survivor.output().slice(before)), 30_000, "the survivor to run the job");
  });
});
