/**
 * A PostgreSQL restart under the running control plane (an admin's `systemctl restart
 * postgresql`, a managed database's failover): two web processes, a worker and the real engine,
 * as `npm run web`, `npm run worker` and `npm run engine` start them, on a PostgreSQL of the
 * test's own, stopped with a fast shutdown in the middle of a deployment's build and started
 * again on the same port and data directory a few seconds later. No Slipway process is
 * restarted: each must answer 503 while the database is gone (readiness and the API, promptly),
 * stay up, and after it is back serve the API, listen again (its LISTEN connection and the
 * socket.io adapter's), run jobs, store what the engine could not send meanwhile, and carry a
 * new deployment to its end with its live updates crossing from one web process to the other.
 *
 * The engine connects to web A only; the browser-side client is on web B: its live log lines
 * cross the socket.io Postgres adapter, and its statuses come from web B's LISTEN connection.
 *
 * Another, shorter outage, a crash (an immediate shutdown, then crash recovery), spans the turn
 * of a minute, when graphile-worker's cron schedules its jobs: the worker must outlive that too.
 * It comes first: the mid-deployment restart, which must not span one, then starts at once.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { and, asc, eq, ne } from "drizzle-orm";
import pg from "pg";
import { io, type Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCaller } from "../../server/api/root";
import type { Services } from "../../server/context";
import { connectDatabase, type DatabaseHandle } from "../../server/db/client";
import { migrateDatabase } from "../../server/db/migrate";
import { deploymentEvents, logLines } from "../../server/db/schema";
import { requestDispatch } from "../../server/deployments/dispatch-job";
import type { DeploymentChanged, UiClientEvents, UiServerEvents } from "../../server/realtime/ui-protocol";
import { generateKey } from "../../server/secrets/envelope";
import { createMasterKeyring } from "../../server/secrets/keyring";
import { eventually, fixture } from "../engine-harness";
import { startGitServer, type GitServer } from "../git-server";
import { killProcessesUnder } from "../process-cleanup";
import { releaseCgroupsCleanup } from "../support/cgroups";
import { deploymentEnding } from "../support/control-plane";
import { spawnControlPlaneProcess, type ControlPlaneProcess } from "../support/control-plane-process";
import { spawnEngine, type EngineProcess } from "../support/engine-process";
import { testPort } from "../support/ports";
import { startRestartablePostgres, type RestartablePostgres } from "../support/restartable-postgres";
import { seedOrganization, testServices, type SeededOrganization } from "../support/seed";

type UiSocket = Socket<UiServerEvents, UiClientEvents>;

const BUILD_LINES = 60;
/** About six seconds of build output: the database is stopped while it is being written. */
const BUILD_COMMAND = `for i in $(seq 1 ${BUILD_LINES}); do echo "restart line $i"; sleep 0.1; done`;
/** How long the database stays down: longer than a probe's two seconds and the listeners' first retries. */
const DOWN_MS = 4_000;
/** "Within seconds": a process's readiness, its LISTEN connections and its requests are back within this of the database. */
const RECOVERY_BOUND_MS = 10_000;
/** The prepared transaction that holds the environment's row through the mid-deployment restart. */
const HOLD = "database-restart-test-hold";
/** While the database is down, an API request is refused within this, never left hanging. */
const REFUSAL_BOUND_MS = 5_000;

let postgres: RestartablePostgres;
let database: DatabaseHandle;
let services: Services;
let org: SeededOrganization;
let token: string;
let git: GitServer;
let webA: ControlPlaneProcess;
let webB: ControlPlaneProcess;
let worker: ControlPlaneProcess;
let engine: EngineProcess;
let engineHome: string;
let home: string;
let ids: { environmentId: string; serviceId: string };
const sockets: UiSocket[] = [];
const api = () => createCaller({ services, actor: org.as("DEVELOPER") });

beforeAll(async () => {
  postgres = await startRestartablePostgres();
  const url = await postgres.createDatabase("slipway");
  await migrateDatabase(url);
  // The test's own pool lives through the restart too: its idle connections are ended with 57P01.
  database = connectDatabase(url, { max: 4 });
  const masterKey = generateKey();
  services = testServices(database.db, { keyring: createMasterKeyring(masterKey), leaseSeconds: 10 });
  org = await seedOrganization(services, "restart");
  token = await org.apiToken("DEVELOPER");
  git = await startGitServer();
  await git.createRepo("shop", fixture("node-app"), { "version.txt": "1\n" });
  const [portA, portB, workerPort, routerPort] = await Promise.all([testPort(), testPort(), testPort(), testPort()]);
  home = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-restart-"));
  engineHome = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-restart-engine-"));
  const shared = {
    DATABASE_URL: url,
    SLIPWAY_MASTER_KEY: masterKey.toString("base64"),
    AUTH_SECRET: "database-restart-test-secret-32-chars",
    SLIPWAY_HOME: home,
    SLIPWAY_LEASE_SECONDS: "10",
    SLIPWAY_WEB_UI: "0",
    SLIPWAY_DRAIN_SECONDS: "0",
  };
  webA = spawnControlPlaneProcess("web", { port: portA!, env: { ...shared, SLIPWAY_URL: `http://127.0.0.1:${portA}`, PGAPPNAME: "slipway-web-a" } });
  webB = spawnControlPlaneProcess("web", { port: portB!, env: { ...shared, SLIPWAY_URL: `http://127.0.0.1:${portB}`, PGAPPNAME: "slipway-web-b" } });
  // debug: graphile-worker's "Completed task" lines, which show that the worker ran a job. One
  // graphile-worker worker: a worker lost to the restart would be all of them.
  worker = spawnControlPlaneProcess("worker", {
    port: workerPort!,
    env: { ...shared, LOG_LEVEL: "debug", PGAPPNAME: "slipway-worker", SLIPWAY_WORKER_CONCURRENCY: "1" },
  });
  await Promise.all([webA.ready(), webB.ready(), worker.ready()]);
  engine = spawnEngine({ url: webA.url, token: org.engineToken, home: engineHome, routerPort: routerPort! });
  await eventually(() => webA.output().includes('"msg":"engine connected"'), 30_000, `the engine to connect to web A\n${engine.output()}`);

  const project = await api().projects.create({ name: "shop" });
  const environment = await api().environments.create({ projectId: project.id, name: "dev" });
  const service = await api().services.create({
    environmentId: environment.id,
    name: "web",
    config: { git: { url: git.url("shop"), ref: { branch: "main" } }, healthCheckPath: "/health", buildCommand: BUILD_COMMAND },
  });
  ids = { environmentId: environment.id, serviceId: service.id };
}, 120_000);

afterAll(async () => {
  for (const socket of sockets) socket.disconnect();
  await engine?.stop("SIGKILL");
  await Promise.all([webA, webB, worker].map((process) => process?.stop()));
  await git?.close();
  if (engineHome) {
    const removeCgroups = releaseCgroupsCleanup(engineHome);
    await killProcessesUnder(engineHome);
    removeCgroups();
    await fs.rm(engineHome, { recursive: true, force: true });
  }
  await database?.close();
  await postgres?.destroy();
  if (home) await fs.rm(home, { recursive: true, force: true });
}, 60_000);

/** A browser-side client of `url`, as the dashboard's deployment page: joins a deployment's room and keeps what arrives live. */
async function follow(url: string, deploymentId: string) {
  const socket: UiSocket = io(`${url}/ui`, { auth: { token }, transports: ["websocket"], forceNew: true, reconnection: false });
  sockets.push(socket);
  const lines = new Map<number, string>();
  const changes: DeploymentChanged[] = [];
  socket.on("log:lines", (batch) => {
    if (batch.stream !== `deployment:${deploymentId}`) return;
    for (const line of batch.lines) lines.set(line.seq, line.text);
  });
  socket.on("deployment:changed", (change) => change.deploymentId === deploymentId && changes.push(change));
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
  await socket.timeout(10_000).emitWithAck("subscribe", { room: `deployment:${deploymentId}` });
  return { lines, changes };
}

/** A REST request with the API token; its status, body and how long it took (a hang ends at 30 s as status 0). */
async function rest(url: string, urlPath: string, init: RequestInit = {}) {
  const started = Date.now();
  try {
    const response = await fetch(`${url}/api/v1${urlPath}`, {
      ...init,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      signal: AbortSignal.timeout(30_000),
    });
    return { status: response.status, body: await response.text(), ms: Date.now() - started };
  } catch (error) {
    return { status: 0, body: String(error), ms: Date.now() - started };
  }
}

async function readinessOf(process: ControlPlaneProcess) {
  const response = await fetch(process.healthUrl, { signal: AbortSignal.timeout(10_000) });
  return { status: response.status, body: (await response.json()) as unknown };
}

/** The LISTEN connections a process holds now: the last statement of each of its idle sessions that listens. */
async function listening(applicationName: string): Promise<string[]> {
  const { rows } = await database.pool.query<{ query: string }>(
    "select query from pg_stat_activity where datname = current_database() and application_name = $1 and query ilike 'listen %' order by query",
    [applicationName],
  );
  return rows.map((row) => row.query);
}

const storedLines = async (deploymentId: string) =>
  database.db.select({ seq: logLines.seq, text: logLines.text }).from(logLines).where(eq(logLines.deploymentId, deploymentId)).orderBy(asc(logLines.seq));
const storedSteps = async (deploymentId: string) =>
  (
    await database.db
      .select()
      .from(deploymentEvents)
      .where(and(eq(deploymentEvents.deploymentId, deploymentId), ne(deploymentEvents.step, "lease")))
      .orderBy(asc(deploymentEvents.id))
  ).map((event) => `${event.step}:${event.status}`);
const buildLines = (texts: Iterable<string>) => [...texts].filter((text) => text.startsWith("restart line "));
const everyBuildLine = Array.from({ length: BUILD_LINES }, (_, index) => `restart line ${index + 1}`);
const STEPS = [
  "deployment:started",
  ...["clone", "build", "start", "health_check", "switch", "drain"].flatMap((step) => [`${step}:started`, `${step}:succeeded`]),
  "deployment:succeeded",
];
/** Waits for the wall clock's next `second` past a minute (graphile-worker's cron fires on the minute). */
async function untilSecond(second: number) {
  const now = Date.now();
  const minute = now - (now % 60_000);
  const target = minute + second * 1000 > now ? minute + second * 1000 : minute + 60_000 + second * 1000;
  await new Promise((resolve) => setTimeout(resolve, target - now));
}
const deploy = async () => (await api().deployments.create({ environmentId: ids.environmentId, action: "DEPLOY" })).deployment.id;
const ended = (deploymentId: string) => deploymentEnding(api(), deploymentId, ["DEPLOYED"], 90_000, () => engine.output());
const processes = () => ({ webA, webB, worker, engine });
const exits = () =>
  Object.entries(processes())
    .filter(([, process]) => process.child.exitCode !== null || process.child.signalCode !== null)
    .map(([name, process]) => `${name} exited (${process.child.exitCode ?? process.child.signalCode}):\n${process.output().slice(-3000)}`);

describe("a PostgreSQL restart under two web processes, a worker and an engine", () => {
  it("listens on every process before the restart (the baseline the rest compares with)", async () => {
    for (const web of ["slipway-web-a", "slipway-web-b"]) {
      const statements = await eventually(async () => ((await listening(web)).length >= 2 ? listening(web) : undefined), 10_000, `${web}'s LISTEN connections`);
      // pg-listener.ts's connection (its last statement: its last channel) and the socket.io adapter's.
      expect(statements.some((query) => query.startsWith("listen "))).toBe(true);
      expect(statements.some((query) => query.startsWith('LISTEN "socket.io'))).toBe(true);
    }
    expect(await listening("slipway-worker")).toContain('LISTEN "jobs:insert"; LISTEN "worker:migrate";');
  });

  it("outlives a crash and recovery across the turn of a minute, when the worker's cron schedules its jobs", async () => {
    await untilSecond(58);
    await postgres.stopImmediate();
    await untilSecond(1);
    // The cron fired at the turn of the minute, the database gone: every process still runs.
    expect(exits()).toEqual([]);
    await postgres.start();
    const backAt = Date.now();
    await Promise.all(
      [webA, webB, worker].map((process) =>
        eventually(async () => (await readinessOf(process)).status === 200, RECOVERY_BOUND_MS, `${process.url} to be ready again`),
      ),
    );
    const before = worker.output().length;
    await requestDispatch(services.db, ids.environmentId);
    await eventually(() => /Completed task \d+ \(dispatch_deployment/.test(worker.output().slice(before)), RECOVERY_BOUND_MS, "the worker to run a job");
    console.log(`the worker ran a job ${Date.now() - backAt} ms after the database came back`);
    expect((await rest(webA.url, "/projects")).status).toBe(200);
    expect(exits()).toEqual([]);
  }, 90_000);

  it("answers 503 while the database is down, crashes nothing, and after it is back serves, listens, runs jobs and deploys again", async () => {
    // Not across the turn of a minute (the test before's): what a worker lost to its job costs shows alone.
    if (new Date().getSeconds() > 40) await untilSecond(1);
    const interrupted = await deploy();
    // Stopped while the build writes its lines: the engine's events and lines wait in its outbox.
    await eventually(async () => buildLines((await storedLines(interrupted)).map((line) => line.text)).length >= 10, 60_000, "the build to be under way");

    // A job in flight when the database stops: the environment's dispatch, waiting for its row,
    // which a prepared transaction holds through the restart. The job's end cannot be recorded.
    const holder = new pg.Client({ connectionString: postgres.url("slipway") });
    await holder.connect();
    await holder.query("begin");
    await holder.query("select 1 from environments where id = $1 for update", [ids.environmentId]);
    await holder.query(`prepare transaction '${HOLD}'`);
    await holder.end();
    await requestDispatch(services.db, ids.environmentId);
    await eventually(
      async () =>
        (
          await database.pool.query(
            "select 1 from pg_stat_activity where application_name = 'slipway-worker' and wait_event_type = 'Lock' and query like '%environments%'",
          )
        ).rowCount === 1,
      10_000,
      "the worker's dispatch job to wait for the environment's row",
    );

    const stoppedAt = Date.now();
    await postgres.stopFast();
    console.log(`PostgreSQL stopped (fast shutdown) in ${Date.now() - stoppedAt} ms`);

    // Readiness fails on every process, with the reason, promptly.
    for (const process of [webA, webB]) {
      expect(await readinessOf(process)).toEqual({ status: 503, body: { ok: false, database: "down" } });
    }
    // The worker's runner may be down as well: one that lost a worker in the crash before is started anew only once the database answers.
    expect(await readinessOf(worker)).toMatchObject({ status: 503, body: { ok: false, database: "down" } });
    // The API refuses with a 503 that says why, promptly: never a hang, never a bare 500.
    const [read, write] = await Promise.all([
      rest(webB.url, "/projects"),
      rest(webA.url, "/deployments", { method: "POST", body: JSON.stringify({ environmentId: ids.environmentId, action: "DEPLOY" }) }),
    ]);
    for (const answer of [read, write]) {
      expect(answer.ms).toBeLessThan(REFUSAL_BOUND_MS);
      expect({ status: answer.status, body: answer.body }).toEqual({ status: 503, body: expect.stringMatching(/database/i) });
    }

    const downFor = DOWN_MS - (Date.now() - stoppedAt);
    if (downFor > 0) await new Promise((resolve) => setTimeout(resolve, downFor));
    expect(exits()).toEqual([]);
    await postgres.start();
    const backAt = Date.now();
    console.log(`PostgreSQL down for ${backAt - stoppedAt} ms`);
    await database.pool.query(`rollback prepared '${HOLD}'`);

    // Ready again, each process, within seconds: no process was restarted.
    await Promise.all(
      [webA, webB, worker].map((process) =>
        eventually(async () => (await readinessOf(process)).status === 200, RECOVERY_BOUND_MS, `${process.url} to be ready again`),
      ),
    );
    console.log(`every process ready ${Date.now() - backAt} ms after the database`);
    expect((await rest(webB.url, "/projects")).status).toBe(200);
    // Both LISTEN connections of each web process, and the worker's, are back.
    await eventually(
      async () => {
        for (const web of ["slipway-web-a", "slipway-web-b"]) {
          const statements = await listening(web);
          if (!statements.some((query) => query.startsWith("listen ")) || !statements.some((query) => query.startsWith('LISTEN "socket.io'))) return undefined;
        }
        return (await listening("slipway-worker")).length > 0;
      },
      RECOVERY_BOUND_MS,
      "every LISTEN connection to be back",
    );
    console.log(`every LISTEN connection back ${Date.now() - backAt} ms after the database`);

    // What the engine could not have stored meanwhile is stored now: every event and line, each once.
    await ended(interrupted);
    expect(await storedSteps(interrupted)).toEqual(STEPS);
    await eventually(
      async () => buildLines((await storedLines(interrupted)).map((line) => line.text)).length === BUILD_LINES,
      RECOVERY_BOUND_MS,
      "every build line stored",
    );
    expect(buildLines((await storedLines(interrupted)).map((line) => line.text))).toEqual(everyBuildLine);

    // The worker runs jobs again: new ones, and the one the restart interrupted (none is left locked).
    const before = worker.output().length;
    await requestDispatch(services.db, ids.environmentId);
    await eventually(() => /Completed task \d+ \(dispatch_deployment/.test(worker.output().slice(before)), RECOVERY_BOUND_MS, "the worker to run a job");
    await eventually(
      async () => (await database.pool.query("select 1 from graphile_worker._private_jobs where locked_by is not null")).rowCount === 0 || undefined,
      RECOVERY_BOUND_MS,
      "no job left locked by a worker",
    );

    // A new deployment, asked of web B, reaches the engine on web A and ends; a client of web B
    // sees its lines live (through the adapter, from A) and its statuses (through B's LISTEN).
    const created = await rest(webB.url, "/deployments", { method: "POST", body: JSON.stringify({ environmentId: ids.environmentId, action: "DEPLOY" }) });
    expect(created.status, created.body).toBe(200);
    const fresh = (JSON.parse(created.body) as { deployment: { id: string } }).deployment.id;
    const onB = await follow(webB.url, fresh);
    await ended(fresh);
    await eventually(() => onB.changes.at(-1)?.status === "DEPLOYED", RECOVERY_BOUND_MS, "the DEPLOYED status on web B");
    await eventually(() => buildLines(onB.lines.values()).length > BUILD_LINES / 2, RECOVERY_BOUND_MS, "build lines live on web B");
    expect(webB.output()).not.toContain('"msg":"engine connected"');

    // The engine was told the control plane was unavailable, not that it failed; no web process logged a request as failed.
    expect(engine.output()).toMatch(/"code":"UNAVAILABLE"/);
    expect(engine.output()).not.toMatch(/"code":"INTERNAL"/);
    for (const web of [webA, webB]) expect(web.output()).not.toMatch(/"msg":"(request failed|REST request failed|engine message failed)"/);
    expect(exits()).toEqual([]);
  }, 90_000);
});
