/**
 * The platform heals itself across engine restarts (issue 12): a real control plane on a real
 * PostgreSQL, the real engine as its own process killed with SIGKILL at awkward moments, real
 * apps, real HTTP. What a user would notice: no stray processes, no repeated or lost log lines or
 * events, no deployment left waiting for a lease to run out.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { eq } from "drizzle-orm";
import { testPort } from "../support/ports";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCaller } from "../../server/api/root";
import type { Services } from "../../server/context";
import { engineFiles } from "../../engine/engine-files";
import { readOutboxJournal } from "../../engine/outbox";
import { deploymentEvents, logLines } from "../../server/db/schema";
import { createTestDatabase, withDatabaseDown, type TestDatabase } from "../database";
import { eventually, fixture, request } from "../engine-harness";
import { startGitServer, type GitServer } from "../git-server";
import { processesUnder, removeEngineHome } from "../process-cleanup";
import { controlPlane, deploymentEnding } from "../support/control-plane";
import { spawnEngine, type EngineProcess } from "../support/engine-process";
import { seedOrganization, testServices, type SeededOrganization } from "../support/seed";

/** Long on purpose: nothing below may wait for a lease to run out. */
const LEASE_SECONDS = 120;
const logger = pino({ level: "silent" });

let database: TestDatabase;
let services: Services;
let org: SeededOrganization;
let engine: EngineProcess;
let engineHome: string;
let routerPort: number;
let webPort: number;
let gitServer: GitServer;
let control: ReturnType<typeof controlPlane>;

/** A new engine process on the same home, once it has adopted what the previous one left (it says "engine started" then). */
async function startEngine() {
  engine = spawnEngine({ url: `http://127.0.0.1:${webPort}`, token: org.engineToken, home: engineHome, routerPort });
  await eventually(() => engine.output().includes('"msg":"engine started"'), 30_000, "the engine to start");
}

const api = () => createCaller({ services, actor: org.as("DEVELOPER") });
const waitFor = (deploymentId: string, expected: string, timeoutMs = 90_000) =>
  deploymentEnding(api(), deploymentId, [expected], timeoutMs, () => engine.output());

async function createService(project: string, repo: string, config: Record<string, unknown> = {}) {
  const created = await api().projects.create({ name: project });
  const environment = await api().environments.create({ projectId: created.id, name: "dev" });
  const service = await api().services.create({
    environmentId: environment.id,
    name: "web",
    config: { git: { url: gitServer.url(repo), ref: { branch: "main" } }, healthCheckPath: "/health", ...config },
  });
  return { environmentId: environment.id, serviceId: service.id, host: `web-dev-${project}.localhost` };
}

async function deploy(environmentId: string) {
  const { deployment } = await api().deployments.create({ environmentId, action: "DEPLOY" });
  return deployment;
}

beforeAll(async () => {
  database = await createTestDatabase();
  services = testServices(database.db, { leaseSeconds: LEASE_SECONDS });
  org = await seedOrganization(services, "restarts");
  [webPort, routerPort] = await Promise.all([testPort(), testPort()]);
  engineHome = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-restart-engine-"));
  gitServer = await startGitServer();
  await gitServer.createRepo("slow", fixture("node-app"), { "version.txt": "1\n" });
  await gitServer.createRepo("chatty", fixture("log-burst"));
  control = controlPlane({ services, database, port: webPort, logger });
  await control.start();
  await startEngine();
}, 60_000);

afterAll(async () => {
  await engine?.stop("SIGKILL");
  await control?.stop();
  await gitServer?.close();
  if (engineHome) await removeEngineHome(engineHome);
});

describe("an engine killed and started again", () => {
  it("stops the release it had started but not switched to, and the previous release keeps serving", async () => {
    const { environmentId, serviceId, host } = await createService("slow", "slow");
    await waitFor((await deploy(environmentId)).id, "DEPLOYED");
    const version = async () => JSON.parse((await request(routerPort, host)).body) as { version: string; instance: string };
    const live = await version();
    expect(live.version).toBe("1");

    // The next release takes its time before it listens: the engine is killed while it waits for its health check.
    await gitServer.pushDirectory("slow", fixture("node-app"), { "version.txt": "2\n" });
    await api().services.update({ serviceId, config: { startCommand: "sleep 60 && node server.js", healthCheckTimeoutSeconds: 120 } });
    const stuck = await deploy(environmentId);
    await eventually(
      async () => {
        const events = await api().deployments.events({ deploymentId: stuck.id });
        return events.some((event) => event.step === "health_check" && event.status === "started");
      },
      60_000,
      "the new release to be started",
    );
    await engine.stop("SIGKILL");

    const releasesDir = path.join(engineHome, "services", serviceId, "releases");
    // The live release's process group: its leader is the process the engine's state tracks.
    const liveGroup = (JSON.parse(await fs.readFile(path.join(engineHome, "services", serviceId, "state.json"), "utf8")) as { current: { pid: number } })
      .current.pid;
    expect(liveGroup).toBeDefined();
    const strays = () => processesUnder(releasesDir).filter(({ pgid }) => pgid !== liveGroup);
    // What the killed engine left: the new release's processes, tracked by no state file.
    expect(strays().length).toBeGreaterThan(0);

    // Canceled while no engine runs, so that the next engine only has to clean up.
    await api().deployments.cancel({ deploymentId: stuck.id });
    await startEngine();
    expect(strays()).toEqual([]);
    expect(await version()).toEqual(live);

    // Its new boot id ends the deployment at once, not when the lease (two minutes) runs out.
    const canceled = await waitFor(stuck.id, "CANCELED", 20_000);
    expect(canceled.statusMessage).toMatch(/engine restarted/);
  }, 120_000);

  it("stores every runtime line exactly once across kills, while lines keep coming and while the control plane is down", async () => {
    const { environmentId, serviceId, host } = await createService("chatty", "chatty");
    await waitFor((await deploy(environmentId)).id, "DEPLOYED");
    const storedBursts = async () => {
      const rows = await database.db.select({ text: logLines.text }).from(logLines).where(eq(logLines.serviceId, serviceId));
      return rows.map((row) => row.text).filter((text) => text.startsWith("burst "));
    };
    const burst = async (rate: number, seconds: number) =>
      JSON.parse((await request(routerPort, host, `/burst?rate=${rate}&seconds=${seconds}`)).body) as { run: number; total: number };
    const countsOf = (lines: string[], run: number) => {
      const counts = new Map<number, number>();
      for (const line of lines) {
        const [, lineRun, n] = line.split(" ");
        if (Number(lineRun) === run) counts.set(Number(n), (counts.get(Number(n)) ?? 0) + 1);
      }
      return counts;
    };
    const expectEachOnce = (counts: Map<number, number>, total: number) => {
      const wrong = [...Array(total).keys()].filter((n) => counts.get(n) !== 1).map((n) => `${n}: ${counts.get(n) ?? 0}`);
      expect(wrong).toEqual([]);
    };

    // Killed while the lines flow and are being shipped.
    const first = await burst(400, 4);
    await eventually(async () => countsOf(await storedBursts(), first.run).size > 300 || undefined, 20_000, "lines to be stored");
    await engine.stop("SIGKILL");
    await startEngine();
    await eventually(async () => countsOf(await storedBursts(), first.run).size === first.total || undefined, 30_000, "every line of the first burst");
    expectEachOnce(countsOf(await storedBursts(), first.run), first.total);

    // Killed with lines read but never stored (no control plane to take them), then everything comes back.
    await control.stop();
    const second = await burst(500, 1);
    const logFile = path.join(engineHome, "services", serviceId, "releases");
    await eventually(
      async () => {
        const [releaseId] = await fs.readdir(logFile);
        return (await fs.readFile(path.join(logFile, releaseId!, "runtime.log"), "utf8")).includes(`burst ${second.run} ${second.total - 1} `) || undefined;
      },
      20_000,
      "the second burst to be written",
    );
    await engine.stop("SIGKILL");
    await control.start();
    await startEngine();
    await eventually(async () => countsOf(await storedBursts(), second.run).size === second.total || undefined, 30_000, "every line of the second burst");
    expectEachOnce(countsOf(await storedBursts(), second.run), second.total);
    expectEachOnce(countsOf(await storedBursts(), first.run), first.total);
  }, 180_000);

  it("stores every event and log line it produced while PostgreSQL was down and it was then killed, each once, once it is back", async () => {
    await gitServer.createRepo("journal", fixture("node-app"), { "version.txt": "1\n" });
    // Build output in two halves around a pause: the second half, and every step after the build, come while the database is down.
    const lines = (from: number) => `for i in $(seq ${from} ${from + 149}); do echo "outbox line $i"; done`;
    const { environmentId, serviceId } = await createService("journal", "journal", { buildCommand: `${lines(1)}; sleep 2; ${lines(151)}` });
    const deployment = await deploy(environmentId);
    const storedEvents = () => database.db.select().from(deploymentEvents).where(eq(deploymentEvents.deploymentId, deployment.id)).orderBy(deploymentEvents.id);
    await eventually(
      async () => (await storedEvents()).some((event) => event.step === "deployment" && event.status === "started") || undefined,
      60_000,
      "the deployment to start",
    );

    // The control plane (web) answers, but cannot store: the engine finishes the deployment and keeps all it reports.
    const outbox = engineFiles(engineHome).outboxDir;
    const outcomeQueued = () =>
      readOutboxJournal(outbox).some(
        (record) =>
          record.kind === "event" && record.deploymentId === deployment.id && record.event.step === "deployment" && record.event.status === "succeeded",
      );
    await control.stopWorker();
    const queued = await withDatabaseDown(database, async () => {
      await eventually(outcomeQueued, 60_000, "the deployment's outcome to be queued");
      await engine.stop("SIGKILL");
      return readOutboxJournal(outbox);
    });
    await control.startWorker();
    const queuedEvents = queued.flatMap((record) => (record.kind === "event" && record.deploymentId === deployment.id ? [record.event] : []));
    const queuedLines = queued.flatMap((record) => (record.kind === "line" ? [record] : []));
    // What the kill would have lost without the journal: most of the deployment's events and the build output after the pause.
    expect(queuedEvents.map((event) => `${event.step}:${event.status}`)).toEqual(expect.arrayContaining(["build:succeeded", "deployment:succeeded"]));
    expect(queuedLines.map((record) => record.line.text)).toContain("outbox line 300");

    await startEngine();
    await waitFor(deployment.id, "DEPLOYED");
    const storedLines = async () => database.db.select().from(logLines).where(eq(logLines.deploymentId, deployment.id));
    await eventually(async () => (await storedLines()).some((row) => row.text === "outbox line 300") || undefined, 30_000, "the build output to be stored");

    // Every event once, in order (the restart adds the control plane's own `lease:expired`, and nothing else).
    const events = (await storedEvents()).filter((event) => event.step !== "lease");
    expect(events.map((event) => `${event.step}:${event.status}`)).toEqual([
      "deployment:started",
      ...["clone", "build", "start", "health_check", "switch", "drain"].flatMap((step) => [`${step}:started`, `${step}:succeeded`]),
      "deployment:succeeded",
    ]);
    expect(queuedEvents.map((event) => events.filter((stored) => stored.seq === event.seq).length)).toEqual(queuedEvents.map(() => 1));

    // Every build line once, those the kill took included.
    const build = (await storedLines()).map((row) => row.text).filter((text) => text.startsWith("outbox line "));
    expect(build.sort((a, b) => Number(a.split(" ")[2]) - Number(b.split(" ")[2]))).toEqual(
      Array.from({ length: 300 }, (_, index) => `outbox line ${index + 1}`),
    );
    for (const record of queuedLines.filter((queuedLine) => queuedLine.stream.kind === "deployment")) {
      expect((await storedLines()).filter((row) => row.seq === record.line.seq && row.text === record.line.text)).toHaveLength(1);
    }
    // The app's first runtime line once: the journal's copy and the one read again from its log file are one line.
    const runtime = async () =>
      (await database.db.select({ text: logLines.text }).from(logLines).where(eq(logLines.serviceId, serviceId))).filter((row) =>
        row.text.startsWith("version 1 listening"),
      );
    await eventually(async () => (await runtime()).length > 0 || undefined, 30_000, "the app's output to be stored");
    expect(await runtime()).toHaveLength(1);
  }, 180_000);
});
