/**
 * The spine, end to end: a real control plane (web with its engine gateway, graphile-worker) on
 * a real PostgreSQL, the real engine as its own process with its router, a real git server on
 * 127.0.0.1, real apps, real HTTP.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { testPort } from "../support/ports";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EVENT_MESSAGE_MAX } from "../../engine/protocol";
import { createCaller } from "../../server/api/root";
import type { Services } from "../../server/context";
import { createTestDatabase, type TestDatabase } from "../database";
import { eventually, fixture, request } from "../engine-harness";
import { startGitServer, type GitServer } from "../git-server";
import { killProcessesUnder, removeEngineHome } from "../process-cleanup";
import { controlPlane, deploymentEnding } from "../support/control-plane";
import { spawnEngine, type EngineProcess } from "../support/engine-process";
import { applicationOf, seedOrganization, testServices, type SeededOrganization } from "../support/seed";

const LEASE_SECONDS = 5;
const SECRET = "tok-9f8e7d6c5b4a";
const logger = pino({ level: "silent" });

let database: TestDatabase;
let services: Services;
let org: SeededOrganization;
let webPort: number;
let gitServer: GitServer;
let engine: EngineProcess;
let engineHome: string;
let routerPort: number;
let ids: { environmentId: string; serviceId: string };

let control: ReturnType<typeof controlPlane>;
const startControlPlane = () => control.start();
const stopControlPlane = () => control.stop();

const startEngine = () => spawnEngine({ url: `http://127.0.0.1:${webPort}`, token: org.engineToken, home: engineHome, routerPort });
const api = () => createCaller({ services, actor: org.as("DEVELOPER") });
const HOST = "web-dev-shop.localhost";
const visit = () => request(routerPort, HOST);
const version = async () => JSON.parse((await visit()).body).version as string;

async function deployAndWait(expected: string[] = ["DEPLOYED"]) {
  const { deployment } = await api().deployments.create({ environmentId: ids.environmentId, action: "DEPLOY" });
  return waitFor(deployment.id, expected);
}

const waitFor = (deploymentId: string, expected: string[], timeoutMs = 90_000) =>
  deploymentEnding(api(), deploymentId, expected, timeoutMs, () => engine.output());

beforeAll(async () => {
  database = await createTestDatabase();
  services = testServices(database.db, { leaseSeconds: LEASE_SECONDS });
  org = await seedOrganization(services, "spine");
  [webPort, routerPort] = await Promise.all([testPort(), testPort()]);
  engineHome = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-spine-engine-"));
  gitServer = await startGitServer();
  await gitServer.createRepo("shop", fixture("node-app"), { "version.txt": "1\n" });
  control = controlPlane({ services, database, port: webPort, logger });
  await startControlPlane();
  engine = startEngine();

  const project = await api().projects.create({ name: "shop" });
  const environment = await api().environments.create({ projectId: project.id, name: "dev" });
  const service = await api().services.create({
    environmentId: environment.id,
    name: "web",
    config: { git: { url: gitServer.url("shop"), ref: { branch: "main" } }, healthCheckPath: "/health" },
  });
  await api().variables.set({ scope: "SERVICE", targetId: service.id, key: "API_TOKEN", value: SECRET, secret: true });
  await api().variables.set({ scope: "PROJECT", targetId: project.id, key: "GREETING", value: "hello from the project" });
  ids = { environmentId: environment.id, serviceId: service.id };
  // A deployment is leased as it is asked for, and a lease not taken within LEASE_SECONDS is
  // handed out again, three times at most: the engine's boot (seconds on a busy host) must not
  // use up its attempts. What an engine that comes late gets is the engine tests' concern.
  await eventually(() => engine.output().includes("connected to the control plane"), 60_000, "the engine to connect");
}, 120_000);

afterAll(async () => {
  await engine?.stop("SIGKILL");
  await control?.stop();
  await gitServer?.close();
  if (engineHome) await removeEngineHome(engineHome);
});

describe("from git URL to a live app", () => {
  it("deploys a Node app from git and serves it through the router on its own domain", async () => {
    const done = await deployAndWait();
    expect(done.commits[ids.serviceId]).toMatch(/^[0-9a-f]{40}$/);
    const answer = JSON.parse((await visit()).body);
    expect(answer).toMatchObject({ version: "1", greeting: "hello from the project" });

    const steps = await api().deployments.events({ deploymentId: done.id });
    const finished = steps.filter((e) => e.status === "succeeded" && e.serviceId).map((e) => e.step);
    expect(finished).toEqual(expect.arrayContaining(["clone", "build", "start", "health_check", "switch"]));
    for (const step of steps.filter((e) => e.status === "succeeded" && e.serviceId)) expect(step.durationMs).toBeGreaterThanOrEqual(0);

    const buildLog = await api().deployments.logs({ deploymentId: done.id, after: 0, limit: 1000 });
    expect(buildLog.length).toBeGreaterThan(0);
    const runtime = await eventually(
      async () => {
        const lines = await api().deployments.logs({ serviceId: ids.serviceId, after: 0, limit: 1000 });
        return lines.some((l) => l.text.includes("listening")) ? lines : undefined;
      },
      20_000,
      "runtime log lines",
    );
    const stored = JSON.stringify([...buildLog, ...runtime]);
    expect(stored).not.toContain(SECRET);
    expect(runtime.find((l) => l.text.includes("listening"))?.text).toContain("****");
    // Resuming after the last sequence number returns nothing already seen.
    const last = runtime.at(-1)!.seq;
    expect((await api().deployments.logs({ serviceId: ids.serviceId, after: last, limit: 1000 })).every((l) => l.seq > last)).toBe(true);
  });

  it("answers 404 for a host no service has", async () => {
    const unknown = await request(routerPort, "nothing-here.localhost");
    expect(unknown.status).toBe(404);
    expect(unknown.body).toContain("nothing-here.localhost");
  });

  it("redeploys a new commit under a steady request loop with zero failed requests", async () => {
    await gitServer.pushDirectory("shop", fixture("node-app"), { "version.txt": "2\n" });
    const failures: string[] = [];
    let requests = 0;
    let looping = true;
    const loop = (async () => {
      while (looping) {
        requests++;
        try {
          const answer = await visit();
          if (answer.status !== 200) failures.push(`${answer.status} ${answer.body.slice(0, 100)}`);
        } catch (error) {
          failures.push(String(error));
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    try {
      await deployAndWait();
      await new Promise((resolve) => setTimeout(resolve, 300));
    } finally {
      looping = false;
      await loop;
    }
    expect(requests).toBeGreaterThan(20);
    expect(failures).toEqual([]);
    expect(await version()).toBe("2");
  });

  it("ends a broken commit in BUILD_ERROR naming the step, and keeps the old version serving", async () => {
    await gitServer.pushDirectory("shop", fixture("broken-build"));
    const failed = await deployAndWait(["BUILD_ERROR"]);
    expect(failed.statusMessage).toMatch(/build/i);
    expect(await version()).toBe("2");
  });

  it("fails a build whose error output is 1 MB with a readable message, not a lost outcome", async () => {
    await gitServer.pushDirectory("shop", fixture("loud-build"));
    const failed = await deployAndWait(["BUILD_ERROR"]);
    expect(failed.attempt).toBe(1);
    const build = (await api().deployments.events({ deploymentId: failed.id })).find((event) => event.step === "build" && event.status === "failed");
    expect(build?.message?.length).toBeLessThanOrEqual(EVENT_MESSAGE_MAX);
    expect(build?.message).toMatch(/^build command `npm run build` failed \(exit 1\); its last lines:/);
    // Its 1 MB lines are cut to what a line may take (engine/runtime/shared/line-tail.ts), and the error that ends it stays.
    expect(build?.message).toMatch(/x…\n[^]*Error: the build broke on purpose$/);
    expect(await version()).toBe("2");
  });

  it("re-dispatches a deployment whose engine was killed with SIGKILL; the app keeps serving", async () => {
    await gitServer.pushDirectory("shop", fixture("node-app"), { "version.txt": "3\n" });
    const { deployment } = await api().deployments.create({ environmentId: ids.environmentId, action: "DEPLOY" });
    await eventually(async () => (await api().deployments.get({ deploymentId: deployment.id })).status !== "QUEUED", 20_000, "the engine to start");
    await engine.stop("SIGKILL");
    expect(await version()).toBe("2");

    engine = startEngine();
    const done = await waitFor(deployment.id, ["DEPLOYED"], LEASE_SECONDS * 1000 * 4 + 60_000);
    expect(done.attempt).toBeGreaterThanOrEqual(2);
    const events = await api().deployments.events({ deploymentId: deployment.id });
    expect(events.some((e) => e.step === "lease" && e.status === "expired")).toBe(true);
    expect(await version()).toBe("3");
  });

  it("keeps serving while web and worker are stopped, and is consistent when they return", async () => {
    await stopControlPlane();
    for (let i = 0; i < 5; i++) expect((await visit()).status).toBe(200);
    await startControlPlane();
    const service = await eventually(
      async () => {
        const current = await api().services.get({ serviceId: ids.serviceId });
        return current.runtime?.state === "running" ? current : undefined;
      },
      20_000,
      "a heartbeat after the restart",
    );
    expect(service.runtime?.commit).toBeDefined();

    const { deployment } = await api().deployments.create({ environmentId: ids.environmentId, action: "STOP" });
    await waitFor(deployment.id, ["STOPPED"]);
    expect((await visit()).status).toBe(503);
    await deployAndWait();
    expect(await version()).toBe("3");
  });

  it("cancels a deployment during its build; the previous release keeps serving", async () => {
    await api().services.update({ serviceId: ids.serviceId, config: { buildCommand: "sleep 60" } });
    const { deployment } = await api().deployments.create({ environmentId: ids.environmentId, action: "DEPLOY" });
    await eventually(
      async () => {
        const events = await api().deployments.events({ deploymentId: deployment.id });
        return events.some((e) => e.step === "build" && e.status === "started");
      },
      30_000,
      "the build to start",
    );
    expect((await api().deployments.cancel({ deploymentId: deployment.id })).status).toBe("CANCELING");
    const done = await waitFor(deployment.id, ["CANCELED"], 20_000);
    expect(done.finishedAt).not.toBeNull();
    expect(await version()).toBe("3");
    await api().services.update({ serviceId: ids.serviceId, config: { buildCommand: null } });
    expect(applicationOf(await api().services.get({ serviceId: ids.serviceId })).buildCommand).toBeUndefined();
  });

  it("restarts a crashed app with backoff and shows the restart count", async () => {
    const statePath = path.join(engineHome, "services", ids.serviceId, "state.json");
    const state = JSON.parse(await fs.readFile(statePath, "utf8")) as { current: { pid: number } };
    process.kill(state.current.pid, "SIGKILL");
    const service = await eventually(
      async () => {
        const current = await api().services.get({ serviceId: ids.serviceId });
        return current.runtime && current.runtime.restarts >= 1 && current.runtime.state === "running" ? current : undefined;
      },
      30_000,
      "the restart to be reported",
    );
    expect(service.runtime?.restarts).toBeGreaterThanOrEqual(1);
    await eventually(async () => (await visit()).status === 200, 10_000, "the app to serve again");
    expect(await version()).toBe("3");
  });

  it("restarts the environment's services on request, with the variables changed since and without a rebuild", async () => {
    type Answer = { instance: string; version: string; release: string; greeting: string };
    const before = JSON.parse((await visit()).body) as Answer;
    const listening = async () =>
      (await api().deployments.logs({ serviceId: ids.serviceId, after: 0, limit: 5000 })).filter((l) => l.text.includes("listening"));
    const listenedBefore = (await listening()).length;
    // As Heroku applies a config change (issue 15, item 18): a plain variable and a new secret, then a restart.
    const rotated = "tok-rotated-1a2b3c";
    await api().variables.set({ scope: "SERVICE", targetId: ids.serviceId, key: "GREETING", value: "hello after a restart" });
    await api().variables.set({ scope: "SERVICE", targetId: ids.serviceId, key: "API_TOKEN", value: rotated, secret: true });
    const { deployment } = await api().deployments.create({ environmentId: ids.environmentId, action: "RESTART" });
    await waitFor(deployment.id, ["DEPLOYED"]);
    const after = JSON.parse((await visit()).body) as Answer;
    expect(after.instance).not.toBe(before.instance);
    expect(after).toMatchObject({ version: "3", greeting: "hello after a restart", release: before.release });
    // The same release: nothing was cloned or built.
    const steps = (await api().deployments.events({ deploymentId: deployment.id })).filter((e) => e.serviceId).map((e) => e.step);
    expect(steps).not.toContain("build");
    expect(steps).toContain("restart");
    // The new secret is masked in the runtime output from its first line.
    const lines = await eventually(
      async () => {
        const all = await listening();
        return all.length > listenedBefore ? all : undefined;
      },
      20_000,
      "the restarted process's first line",
    );
    expect(lines.at(-1)!.text).toContain("with token ****");
    expect(JSON.stringify(lines)).not.toContain(rotated);
  });

  it("rolls back to the deployment before the latest: its commit serves again, then a deploy brings the branch's head back", async () => {
    const history = await api().deployments.list({ environmentId: ids.environmentId });
    const successes = history.filter((d) => d.action === "DEPLOY" && d.status === "DEPLOYED");
    const latest = successes[0]!;
    // The deployment before the latest that ran another commit (the web and worker test redeployed the same one).
    const previous = successes.find((d) => d.commits[ids.serviceId] !== latest.commits[ids.serviceId]);
    const rollback = await api().deployments.rollback({ environmentId: ids.environmentId });
    expect(rollback).toMatchObject({ action: "DEPLOY", rollbackOf: previous!.id, serviceIds: [ids.serviceId] });
    const done = await waitFor(rollback.id, ["DEPLOYED"]);
    expect(done.commits[ids.serviceId]).toBe(previous!.commits[ids.serviceId]);
    expect(done.commits[ids.serviceId]).not.toBe(latest.commits[ids.serviceId]);
    // The history says what each commit is: its subject and author, read by the engine as it cloned.
    expect(done.commitDetails[ids.serviceId]).toMatchObject({ subject: "update from node-app", author: "Slipway Test" });
    expect(done.commitDetails[ids.serviceId]!.authoredAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(await version()).toBe("2");
    // Only a successful DEPLOY can be rolled back to.
    const failed = history.find((d) => d.status === "BUILD_ERROR")!;
    await expect(api().deployments.rollback({ environmentId: ids.environmentId, to: failed.id })).rejects.toThrow(
      /only a successful DEPLOY can be rolled back to/,
    );

    const { deployment } = await api().deployments.create({ environmentId: ids.environmentId, action: "DEPLOY" });
    await waitFor(deployment.id, ["DEPLOYED"]);
    expect(await version()).toBe("3");
  });

  it("refuses an engine with a wrong token", async () => {
    const impostor = spawnEngine({ url: `http://127.0.0.1:${webPort}`, token: "swe_wrong", home: `${engineHome}-impostor`, routerPort: await testPort() });
    expect(await impostor.exited).toBe(1);
    expect(impostor.output()).toMatch(/refused/);
    await killProcessesUnder(`${engineHome}-impostor`);
    await fs.rm(`${engineHome}-impostor`, { recursive: true, force: true });
    // A second engine process starts cold (module loading alone took over 30 s on a loaded 2-core runner).
  }, 90_000);

  it("deletes a service through a DELETE deployment, and then its row", async () => {
    const deployment = await api().services.delete({ serviceId: ids.serviceId });
    await waitFor(deployment.id, ["DELETED"]);
    await expect(api().services.get({ serviceId: ids.serviceId })).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect((await visit()).status).toBe(404);
    await expect(fs.access(path.join(engineHome, "services", ids.serviceId))).rejects.toThrow();
  });
});
