/**
 * Environments on demand, end to end: a real control plane and worker on PostgreSQL, the real
 * engine process, a git server on 127.0.0.1, an application with its own PostgreSQL database
 * (from the embedded binaries) and a lifecycle seed job. The environment is cloned with its
 * data; both copies serve on their own URLs from their own databases; a schedule stops and
 * starts the copy under a controlled clock; the reaper deletes the expired copy, keeps the
 * protected source, and its dry run deletes nothing; files the engine keeps of a service that
 * no longer exists are removed once the reaper says so.
 */
import fs from "node:fs";
import fsp from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { testPort } from "../support/ports";
import pino from "pino";
import type { Runner } from "graphile-worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DatabaseConfig } from "../../engine/protocol/snapshot";
import { createCaller } from "../../server/api/root";
import type { Services } from "../../server/context";
import { eq } from "drizzle-orm";
import { engineLeftovers, services as servicesTable } from "../../server/db/schema";
import { LEFTOVER_GRACE_MS } from "../../server/engines/leftovers";
import { applySchedules, reapExpiredEnvironments } from "../../server/environments/lifecycle";
import { startWebServer } from "../../server/web-server";
import { startWorker } from "../../worker/runner";
import { createTestDatabase, type TestDatabase } from "../database";
import { eventually, fixture, request } from "../engine-harness";
import { startGitServer, type GitServer } from "../git-server";
import { killProcessesUnder } from "../process-cleanup";
import { spawnEngine, type EngineProcess } from "../support/engine-process";
import { seedOrganization, testServices, type SeededOrganization } from "../support/seed";

const logger = pino({ level: "silent" });
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** The services' clock: real time plus an offset the schedule test moves forward. */
let clockOffsetMs = 0;

let database: TestDatabase;
let services: Services;
let org: SeededOrganization;
let web: Awaited<ReturnType<typeof startWebServer>>;
let worker: Runner;
let gitServer: GitServer;
let engine: EngineProcess;
let engineHome: string;
let routerPort: number;
let main: { id: string; projectId: string };

const api = () => createCaller({ services, actor: org.as("DEVELOPER") });
const hostOf = (environment: string) => `web-${environment}-notes.localhost`;

async function notes(environment: string): Promise<{ notes: string[]; seeded: string | null }> {
  const answer = await request(routerPort, hostOf(environment));
  if (answer.status !== 200) throw new Error(`${hostOf(environment)} answered ${answer.status}: ${answer.body}`);
  return JSON.parse(answer.body) as { notes: string[]; seeded: string | null };
}

function addNote(environment: string, text: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port: routerPort, method: "POST", path: `/?text=${encodeURIComponent(text)}`, headers: { host: hostOf(environment) }, agent: false },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

async function waitFor(deploymentId: string, expected: string, timeoutMs = 120_000) {
  const terminal = ["DEPLOYED", "STOPPED", "DELETED", "BUILD_ERROR", "DEPLOYMENT_ERROR", "CANCELED"];
  const done = await eventually(
    async () => {
      const current = await api().deployments.get({ deploymentId });
      return terminal.includes(current.status) ? current : undefined;
    },
    timeoutMs,
    `deployment ${deploymentId} to end`,
  );
  expect(done.status, `${done.statusMessage}\n${engine.output().slice(-3000)}`).toBe(expected);
  return done;
}

beforeAll(async () => {
  database = await createTestDatabase();
  services = testServices(database.db, { now: () => new Date(Date.now() + clockOffsetMs) });
  org = await seedOrganization(services, "environments");
  const webPort = await testPort();
  routerPort = await testPort();
  engineHome = await fsp.mkdtemp(path.join(os.tmpdir(), "slipway-envs-"));
  gitServer = await startGitServer();
  await gitServer.createRepo("notes", fixture("notes-app"));
  web = await startWebServer({ services, databaseUrl: database.url, logger, port: webPort, host: "127.0.0.1" });
  worker = await startWorker({ services, connectionString: database.url, logger, reconcileIntervalMs: 500 });
  engine = spawnEngine({
    url: `http://127.0.0.1:${webPort}`,
    token: org.engineToken,
    home: engineHome,
    routerPort,
    env: {
      SLIPWAY_INVENTORY_SECONDS: "1",
      // The notes app's pg comes from the platform's packages (NODE_PATH below), which its sandbox must show.
      SLIPWAY_SANDBOX_READONLY: path.join(repoRoot, "node_modules"),
    },
  });

  const project = await api().projects.create({ name: "notes" });
  const environment = await api().environments.create({ projectId: project.id, name: "main" });
  main = { id: environment.id, projectId: project.id };
  const git = { url: gitServer.url("notes"), ref: { branch: "main" } };
  await api().services.create({ environmentId: environment.id, name: "notes-db", kind: "DATABASE", config: { engine: "postgresql" } });
  await api().services.create({
    environmentId: environment.id,
    name: "seed",
    kind: "JOB",
    config: { git, command: "node seed.js", trigger: { type: "lifecycle", on: ["start"] } },
  });
  await api().services.create({ environmentId: environment.id, name: "web", config: { git } });
  // The sample app and its seed use the pg driver this repository installed.
  await api().variables.set({ scope: "PROJECT", targetId: project.id, key: "NODE_PATH", value: path.join(repoRoot, "node_modules") });
}, 60_000);

afterAll(async () => {
  await engine?.stop("SIGKILL");
  await worker?.stop();
  await web?.close();
  await gitServer?.close();
  if (engineHome) {
    await killProcessesUnder(engineHome);
    await fsp.rm(engineHome, { recursive: true, force: true });
  }
});

describe("environments on demand", () => {
  it("deploys the database, then the seed job, then the app, which reads the seeded rows", { timeout: 150_000 }, async () => {
    const { deployment } = await api().deployments.create({ environmentId: main.id, action: "DEPLOY" });
    await waitFor(deployment.id, "DEPLOYED");
    const events = await api().deployments.events({ deploymentId: deployment.id });
    const services = await api().services.list({ environmentId: main.id });
    const nameOf = (id: string | null) => services.find((service) => service.id === id)?.name;
    const firstStarts = [...new Set(events.filter((event) => event.serviceId && event.status === "started").map((event) => nameOf(event.serviceId)))];
    expect(firstStarts).toEqual(["notes-db", "seed", "web"]);
    expect(events.find((event) => event.step === "run" && event.status === "succeeded")?.message).toMatch(/succeeded .*outputs SEEDED/);
    expect(await notes("main")).toEqual({ notes: ["welcome", "moor the boat", "check the tide"], seeded: "fresh" });
    expect(await addNote("main", "main only")).toBe(200);
  });

  it("clones the environment with its data: each copy serves its own database on its own URL", { timeout: 150_000 }, async () => {
    const { environment: feature, deployment } = await api().environments.clone({ environmentId: main.id, name: "feature", withData: true, deploy: true });
    await waitFor(deployment!.id, "DEPLOYED");
    // The copy's database started from the source's rows; its seed found them.
    expect(await notes("feature")).toEqual({ notes: ["welcome", "moor the boat", "check the tide", "main only"], seeded: "existing" });

    expect(await addNote("feature", "feature only")).toBe(200);
    expect((await notes("feature")).notes).toContain("feature only");
    expect((await notes("main")).notes).not.toContain("feature only");
    expect(await addNote("main", "main again")).toBe(200);
    expect((await notes("feature")).notes).not.toContain("main again");

    const portOf = async (environmentId: string) =>
      ((await api().services.list({ environmentId })).find((service) => service.kind === "DATABASE")!.config as DatabaseConfig).connection.port;
    expect(await portOf(feature.id)).not.toBe(await portOf(main.id));
  });

  it("stops and starts the copy on its schedule, under a controlled clock, keeping its data", { timeout: 180_000 }, async () => {
    const feature = (await api().environments.list({ projectId: main.projectId })).find((environment) => environment.name === "feature")!;
    await api().environments.update({
      environmentId: feature.id,
      schedule: { weekdays: [1, 2, 3, 4, 5, 6, 7], start: "08:00", stop: "20:00", timeZone: "UTC" },
    });
    const today = new Date();
    const at = (day: number, time: string) =>
      new Date(`${new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() + day)).toISOString().slice(0, 10)}T${time}:30Z`);
    const past = (boundary: Date) => {
      clockOffsetMs = Math.max(clockOffsetMs, boundary.getTime() - Date.now());
    };
    const latest = async (action: string) => (await api().deployments.list({ environmentId: feature.id, limit: 10 })).find((d) => d.action === action);

    // Tonight's stop time (tomorrow's when it has passed today).
    past(today.getUTCHours() < 20 ? at(0, "20:00") : at(1, "20:00"));
    await applySchedules(services);
    const stop = await eventually(() => latest("STOP"), 10_000, "a STOP deployment");
    expect(stop.origin).toBe("SCHEDULER");
    await waitFor(stop.id, "STOPPED");
    expect((await request(routerPort, hostOf("feature"))).status).toBe(503);
    expect((await notes("main")).notes).toContain("main again");

    // The next morning's start time.
    past(today.getUTCHours() < 20 ? at(1, "08:00") : at(2, "08:00"));
    await applySchedules(services);
    const start = await eventually(
      async () => {
        const deployment = await latest("DEPLOY");
        return deployment && deployment.origin === "SCHEDULER" ? deployment : undefined;
      },
      10_000,
      "a scheduled DEPLOY",
    );
    await waitFor(start.id, "DEPLOYED");
    expect((await notes("feature")).notes).toContain("feature only");
  });

  it("reaps the expired copy, keeps the protected source, and its dry run deletes nothing", { timeout: 120_000 }, async () => {
    const feature = (await api().environments.list({ projectId: main.projectId })).find((environment) => environment.name === "feature")!;
    const expired = new Date(services.now().getTime() - 60_000);
    await api().environments.update({ environmentId: feature.id, expiresAt: expired.toISOString() });
    await api().environments.update({ environmentId: main.id, expiresAt: expired.toISOString(), protected: true });
    const featureDatabase = (await api().services.list({ environmentId: feature.id })).find((service) => service.kind === "DATABASE")!;

    const dryRun = await reapExpiredEnvironments(services, { dryRun: true, organizationId: org.organizationId });
    expect(dryRun.environments.map((environment) => environment.name)).toEqual(["feature"]);
    expect((await api().deployments.list({ environmentId: feature.id, limit: 10 })).some((d) => d.action === "DELETE")).toBe(false);

    await reapExpiredEnvironments(services, { dryRun: false, organizationId: org.organizationId });
    const deletion = await eventually(
      async () => (await api().deployments.list({ environmentId: feature.id, limit: 10 })).find((d) => d.action === "DELETE"),
      10_000,
      "a DELETE",
    );
    expect(deletion.origin).toBe("SCHEDULER");
    // A finished DELETE removes the environment, its deployments with it.
    await eventually(
      async () => !(await api().environments.list({ projectId: main.projectId })).some((environment) => environment.name === "feature"),
      60_000,
      "the copy gone",
    );
    // Its database's data went with it; the source still serves.
    expect(fs.existsSync(path.join(engineHome, "services", featureDatabase.id))).toBe(false);
    expect((await notes("main")).notes).toEqual(["welcome", "moor the boat", "check the tide", "main only", "main again"]);
  });

  it("removes what the engine keeps of a service that no longer exists, once the reaper says so", { timeout: 120_000 }, async () => {
    const scratch = await api().services.create({ environmentId: main.id, name: "scratch-db", kind: "DATABASE", config: { engine: "postgresql" } });
    const { deployment } = await api().deployments.create({ environmentId: main.id, action: "DEPLOY", serviceIds: [scratch.id] });
    await waitFor(deployment.id, "DEPLOYED");
    const files = path.join(engineHome, "services", scratch.id);
    expect(fs.existsSync(files)).toBe(true);

    // The service vanishes without a DELETE reaching the engine (its organization's data was
    // removed by hand, say): its server and data stay behind until the reaper acts.
    await services.db.delete(servicesTable).where(eq(servicesTable.id, scratch.id));
    const leftover = await eventually(
      async () => (await services.db.select().from(engineLeftovers).where(eq(engineLeftovers.serviceId, scratch.id)))[0],
      10_000,
      "the leftover reported",
    );
    expect(leftover.bytes).toBeGreaterThan(1_000_000);

    // Within its grace period the reaper leaves it alone; past it, the dry run lists it and removes nothing.
    expect((await reapExpiredEnvironments(services, { dryRun: true, organizationId: org.organizationId })).leftovers).toEqual([]);
    clockOffsetMs += LEFTOVER_GRACE_MS + 60_000;
    const listed = await reapExpiredEnvironments(services, { dryRun: true, organizationId: org.organizationId });
    expect(listed.leftovers).toEqual([expect.objectContaining({ serviceId: scratch.id, cluster: "local" })]);
    // The engine reported its inventory twice since (each answered with what to remove: nothing), and kept the files.
    const reportedAt = async () =>
      (await services.db.select().from(engineLeftovers).where(eq(engineLeftovers.serviceId, scratch.id)))[0]?.reportedAt.getTime() ?? 0;
    // Every second when all is well; a lost acknowledgement holds the next one back for 10 s, and
    // a loaded CI machine slows each: the windows are wide, the failure shows the engine's log.
    const inventoryAfter = (since: number, what: string) =>
      eventually(async () => ((await reportedAt()) > since ? await reportedAt() : undefined), 30_000, what).catch((error: Error) => {
        throw new Error(`${error.message}\n${engine.output().slice(-3000)}`);
      });
    const once = await inventoryAfter(await reportedAt(), "an inventory after the dry run");
    await inventoryAfter(once, "a second inventory after the dry run");
    expect(fs.existsSync(files)).toBe(true);

    await reapExpiredEnvironments(services, { dryRun: false, organizationId: org.organizationId });
    await eventually(() => !fs.existsSync(files), 30_000, "the leftover removed by the engine");
    await eventually(
      async () => (await services.db.select().from(engineLeftovers).where(eq(engineLeftovers.serviceId, scratch.id))).length === 0,
      30_000,
      "the leftover forgotten",
    );
    // Its server was stopped with it; the environment's own database still serves the app.
    const port = (scratch.config as DatabaseConfig).connection.port;
    await expect(new Promise((resolve, reject) => http.get({ host: "127.0.0.1", port }, resolve).on("error", reject))).rejects.toThrow(/ECONNREFUSED/);
    expect((await notes("main")).notes).toContain("main again");
  });
});
