/**
 * The local engine under `npm start` outlives the control plane (issue 12): started as
 * server/start.ts starts it (its keeper, a supervised child, keeps a detached engine), it keeps
 * running a cron job and serving an app while web and worker are down, is kept by the next
 * start and reconnects, is replaced when its configuration changes, and stops on request; the
 * cron runs it missed while stopped are made up for once and reported to the control plane.
 */
import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { fileURLToPath, pathToFileURL } from "node:url";
import { testPort } from "../support/ports";
import pino from "pino";
import type { Runner } from "graphile-worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalEngineReport } from "../../engine/protocol/local-engine";
import { createCaller } from "../../server/api/root";
import type { Services } from "../../server/context";
import { localEngineKeeper, localEngineStopper, type LocalEngineCommand } from "../../server/process/local-engine";
import { createSupervisor, type Supervisor } from "../../server/process/supervisor";
import { startWebServer } from "../../server/web-server";
import { startWorker } from "../../worker/runner";
import { createTestDatabase, type TestDatabase } from "../database";
import { eventually, fixture, request } from "../engine-harness";
import { startGitServer, type GitServer } from "../git-server";
import { killProcessesUnder } from "../process-cleanup";
import { seedOrganization, testServices, type SeededOrganization } from "../support/seed";
import { testToolchainEnv } from "../support/toolchains";
import { isProcessAlive } from "../../engine/runtime/local/processes";

const logger = pino({ level: "silent" });
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
// As server/start.ts runs its children: tsx by absolute URL, and the preload that ends a child whose supervisor died.
const nodeArgs = ["--import", import.meta.resolve("tsx"), "--import", pathToFileURL(path.join(repoRoot, "server", "process", "exit-with-parent.ts")).href];

let database: TestDatabase;
let services: Services;
let org: SeededOrganization;
let gitServer: GitServer;
let webPort: number;
let routerPort: number;
let home: string;
let runsFile: string;
let controlPlane: { web: Awaited<ReturnType<typeof startWebServer>>; worker: Runner } | null = null;
let output = "";

const api = () => createCaller({ services, actor: org.as("DEVELOPER") });

async function startControlPlane() {
  const web = await startWebServer({ services, databaseUrl: database.url, logger, port: webPort, host: "127.0.0.1" });
  const worker = await startWorker({ services, connectionString: database.url, logger, reconcileIntervalMs: 500 });
  controlPlane = { web, worker };
}

async function stopControlPlane() {
  await controlPlane?.worker.stop();
  await controlPlane?.web.close();
  controlPlane = null;
}

function engineCommand(env: Record<string, string> = {}): LocalEngineCommand {
  return {
    repoRoot,
    nodeArgs,
    env: {
      ...process.env,
      SLIPWAY_ENGINE_URL: `http://127.0.0.1:${webPort}`,
      SLIPWAY_ENGINE_TOKEN: org.engineToken,
      SLIPWAY_ENGINE_HOME: home,
      SLIPWAY_ROUTER_PORT: String(routerPort),
      SLIPWAY_ROUTER_HOST: "127.0.0.1",
      SLIPWAY_HEARTBEAT_SECONDS: "1",
      SLIPWAY_LOG_PRETTY: "0",
      ...testToolchainEnv,
      ...env,
    },
  };
}

const collect = new Writable({
  write(chunk: Buffer, _encoding, done) {
    output += chunk.toString();
    done();
  },
});

/** The engine's keeper as `npm start` supervises it; resolves with the engine it reported. */
async function startKeeper(env: Record<string, string> = {}): Promise<{ supervisor: Supervisor; report: LocalEngineReport }> {
  const supervisor = createSupervisor({ stdout: collect, stderr: collect });
  let report: LocalEngineReport | null = null;
  supervisor.start(
    localEngineKeeper(engineCommand(env), (given) => {
      report = given;
    }),
  );
  return { supervisor, report: await eventually(() => report, 120_000, `the keeper's report\n${output.slice(-3000)}`) };
}

const recordedRuns = () => (fs.existsSync(runsFile) ? fs.readFileSync(runsFile, "utf8").split("\n").filter(Boolean) : []);

async function serviceRuntime(serviceId: string) {
  return (await api().services.get({ serviceId })).runtime;
}

beforeAll(async () => {
  database = await createTestDatabase();
  services = testServices(database.db);
  org = await seedOrganization(services, "local-engine");
  webPort = await testPort();
  routerPort = await testPort();
  home = await fsp.mkdtemp(path.join(os.tmpdir(), "slipway-local-engine-"));
  gitServer = await startGitServer();
  await gitServer.createRepo("jobs", fixture("jobs"));
  await gitServer.createRepo("api", fixture("node-app"));
  await startControlPlane();
}, 60_000);

afterAll(async () => {
  await stopControlPlane();
  await gitServer?.close();
  if (home) {
    await killProcessesUnder(home);
    await fsp.rm(home, { recursive: true, force: true });
  }
});

describe("the local engine under npm start", () => {
  let project: { id: string };
  let environment: { id: string };
  let cron: { id: string };
  let enginePid: number;

  it("keeps running a cron job and serving apps while the control plane is down, and is kept by the next start", { timeout: 240_000 }, async () => {
    const first = await startKeeper();
    expect(first.report).toMatchObject({ type: "local-engine", outcome: "started", logFile: path.join(home, "engine.log") });
    enginePid = first.report.pid;

    project = await api().projects.create({ name: "tides" });
    environment = await api().environments.create({ projectId: project.id, name: "main" });
    cron = await api().services.create({
      environmentId: environment.id,
      name: "recorder",
      kind: "JOB",
      config: { git: { url: gitServer.url("jobs") }, command: "sh record-run.sh", trigger: { type: "cron", schedule: "* * * * * *" } },
    });
    await api().services.create({ environmentId: environment.id, name: "api", config: { git: { url: gitServer.url("api") } } });
    // The job writes in its own home (its sandbox shows it nothing else that lasts), which the test reads from outside.
    runsFile = path.join(home, "services", cron.id, "home", "runs.txt");
    const { deployment } = await api().deployments.create({ environmentId: environment.id, action: "DEPLOY" });
    const deployed = await eventually(
      async () => {
        const current = await api().deployments.get({ deploymentId: deployment.id });
        return ["DEPLOYED", "BUILD_ERROR", "DEPLOYMENT_ERROR"].includes(current.status) ? current : undefined;
      },
      120_000,
      "the deployment to end",
    );
    expect(deployed.status, `${deployed.statusMessage}\n${output.slice(-3000)}`).toBe("DEPLOYED");
    await eventually(() => recordedRuns().length >= 1, 10_000, "a scheduled run");
    const appHost = "api-main-tides.localhost";
    expect((await request(routerPort, appHost)).status).toBe(200);

    // Ctrl-C: the supervisor stops the keeper, then worker and web go.
    await first.supervisor.stop();
    await stopControlPlane();
    expect(isProcessAlive(enginePid)).toBe(true);
    const runsWhenStopped = recordedRuns().length;
    await eventually(() => recordedRuns().length >= runsWhenStopped + 2, 10_000, "two scheduled runs while the control plane is down");
    expect(isProcessAlive(enginePid)).toBe(true);
    expect((await request(routerPort, appHost)).status).toBe(200);

    // The next start keeps the same engine, which reconnects by itself and reports again.
    await startControlPlane();
    const restartedAt = Date.now();
    const second = await startKeeper();
    expect(second.report).toMatchObject({ outcome: "kept", pid: enginePid });
    await eventually(
      async () => {
        const runtime = await serviceRuntime(cron.id);
        return runtime && Date.parse(runtime.reportedAt) > restartedAt && runtime.lastRun && Date.parse(runtime.lastRun.startedAt) > restartedAt;
      },
      30_000,
      "a heartbeat of the kept engine after the control plane came back",
    );
    expect(output).toMatch(new RegExp(`kept the engine already running \\(pid ${enginePid}`));

    // Another configuration (here, the heartbeat interval) calls for another engine: the old one
    // is stopped cleanly and the new one adopts the job and the app, which never stopped serving.
    await second.supervisor.stop();
    const third = await startKeeper({ SLIPWAY_HEARTBEAT_SECONDS: "2" });
    expect(third.report.outcome).toBe("started");
    expect(third.report.pid).not.toBe(enginePid);
    expect(isProcessAlive(enginePid)).toBe(false);
    expect(output).toMatch(new RegExp(`replaced pid ${enginePid}, whose configuration changed`));
    expect((await request(routerPort, appHost)).status).toBe(200);
    const runsAfterReplace = recordedRuns().length;
    await eventually(() => recordedRuns().length > runsAfterReplace, 10_000, "a scheduled run by the new engine");
    enginePid = third.report.pid;
    await third.supervisor.stop();
  });

  it("stops on request; the runs it missed while stopped are run once on its return and reported", { timeout: 120_000 }, async () => {
    // Replacing the engine above may have made up for a run already: count those made up from now on.
    const madeUp = () => recordedRuns().filter((runId) => runId.endsWith("-missed"));
    const madeUpBefore = madeUp();
    const stopper = createSupervisor({ stdout: collect, stderr: collect });
    const stopped = await stopper.run(localEngineStopper({ ...engineCommand({ SLIPWAY_HEARTBEAT_SECONDS: "2" }), engineHome: home }));
    expect(stopped.code).toBe(0);
    expect(isProcessAlive(enginePid)).toBe(false);
    expect(output).toMatch(new RegExp(`stopped the engine \\(pid ${enginePid}\\)`));
    expect((await request(routerPort, "api-main-tides.localhost")).status).toBe(200);

    const stoppedAt = Date.now();
    // Time has to pass for runs to be missed; this waits for the clock, not for something not to happen.
    await eventually(() => Date.now() > stoppedAt + 2_200, 5_000, "two scheduled times to pass");
    const back = await startKeeper({ SLIPWAY_HEARTBEAT_SECONDS: "2" });
    expect(back.report.outcome).toBe("started");

    const missed = await eventually(async () => (await serviceRuntime(cron.id))?.missed, 30_000, "the missed runs in the service's runtime");
    expect(missed).toMatchObject({ action: "ran-once", runId: expect.stringMatching(/-missed$/) });
    expect(missed.count).toBeGreaterThanOrEqual(2);
    await eventually(() => recordedRuns().includes(missed.runId!), 10_000, "the run that makes up for them");
    expect(madeUp()).toEqual([...madeUpBefore, missed.runId]);
    await back.supervisor.stop();
    await stopper.run(localEngineStopper({ ...engineCommand(), engineHome: home }));
  });
});
