import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eq, sql } from "drizzle-orm";
import pino from "pino";
import { io, type Socket } from "socket.io-client";
import { createTestDatabase, type TestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { ENGINE_NAMESPACE, PROTOCOL_VERSION, type EngineTask } from "../../engine/protocol/messages";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { dispatchEnvironment, reconcileLeases, redispatchStaleQueues, MAX_DISPATCH_ATTEMPTS, STALE_QUEUE_MS } from "../deployments/dispatch";
import { clusters, deployments, services as serviceTable } from "../db/schema";
import { notifyEngine } from "../deployments/engine-channel";
import { lockEnvironment } from "../deployments/environment-queue";
import { appendControlEvent } from "../deployments/events";
import { startWebServer } from "../web-server";
import { TASKS_READ_MS } from "./engine-gateway";
import { eventually } from "../../test/engine-harness";

let database: TestDatabase;
let services: Services;
let org: SeededOrganization;
let web: Awaited<ReturnType<typeof startWebServer>>;
let clock = Date.now();
/** Heartbeat stamps are written this often (1 s in production). */
const STAMP_FLUSH_MS = 20;
/** Long enough for a stamp that was due to be written. */
const afterStampFlush = () => new Promise((resolve) => setTimeout(resolve, 10 * STAMP_FLUSH_MS));
const sockets: Socket[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  services = testServices(database.db, { now: () => new Date(clock), leaseSeconds: 30 });
  org = await seedOrganization(services, "gateway");
  web = await startWebServer({
    services,
    databaseUrl: database.url,
    logger: pino({ level: "silent" }),
    port: 0,
    host: "127.0.0.1",
    heartbeatStampFlushMs: STAMP_FLUSH_MS,
  });
});

afterAll(async () => {
  for (const socket of sockets) socket.disconnect();
  await web?.close();
});

function connectEngine(token: string, bootId?: string) {
  const socket = io(`${web.url}${ENGINE_NAMESPACE}`, {
    auth: {
      token,
      protocolVersion: PROTOCOL_VERSION,
      engineVersion: "test",
      ...(bootId ? { bootId } : {}),
      capabilities: { runtime: "local", serviceKinds: ["APPLICATION"] },
    },
    transports: ["websocket"],
    reconnection: false,
  });
  sockets.push(socket);
  return socket;
}

function connected(socket: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("connect_error", reject);
  });
}

const request = (socket: Socket, name: string, payload: unknown) => socket.timeout(5000).emitWithAck(name, payload);

/** A new organization with an environment of one service, and its engine connected. */
async function engineWithService(name: string) {
  const owner = await seedOrganization(services, name);
  const api = createCaller({ services, actor: owner.as("DEVELOPER") });
  const project = await api.projects.create({ name });
  const environment = await api.environments.create({ projectId: project.id, name: "dev" });
  const service = await api.services.create({ environmentId: environment.id, name: "web", config: { git: { url: "file:///srv/app.git" } } });
  const engine = connectEngine(owner.engineToken);
  await connected(engine);
  return { owner, api, environment, service, engine };
}

/** Ends a deployment as the control plane does when it gives up on one (dispatch.ts): its end leases the next. */
async function endDeployment(deploymentId: string) {
  const [row] = await services.db.select().from(deployments).where(eq(deployments.id, deploymentId));
  await appendControlEvent(services.db, services, row!, { step: "deployment", status: "failed", message: "ended by the test", at: new Date(clock) });
}

async function requestedDeployment(name: string, secret: string) {
  const api = createCaller({ services, actor: org.as("DEVELOPER") });
  const project = await api.projects.create({ name });
  const environment = await api.environments.create({ projectId: project.id, name: "dev" });
  const service = await api.services.create({ environmentId: environment.id, name: "web", config: { git: { url: "file:///srv/app.git" } } });
  await api.variables.set({ scope: "SERVICE", targetId: service.id, key: "TOKEN", value: secret, secret: true });
  const { deployment } = await api.deployments.create({ environmentId: environment.id, action: "DEPLOY" });
  return { api, environment, service, deployment };
}

/** The times an acknowledgement writes on the deployment's row. */
async function acknowledgement(deploymentId: string) {
  const [row] = await services.db.select().from(deployments).where(eq(deployments.id, deploymentId));
  return { acknowledgedAt: row!.acknowledgedAt?.getTime(), leaseExpiresAt: row!.leaseExpiresAt?.getTime(), updatedAt: row!.updatedAt.getTime() };
}

describe("the engine gateway", () => {
  it("refuses a wrong token at the handshake", async () => {
    await expect(connected(connectEngine("swe_not-a-token"))).rejects.toThrow(/Unknown or revoked engine token/);
  });

  it("hands a requested deployment to its cluster's engine at once, with no worker in between, with secrets opened, and projects its events", async () => {
    const engine = connectEngine(org.engineToken);
    const available = new Promise<{ task?: EngineTask }>((resolve) => engine.once("task:available", resolve));
    await connected(engine);
    expect(await request(engine, "task:pull", {})).toEqual({ ok: true, task: null });

    // No worker runs here: the request leases the deployment itself, and its engine hears of it on
    // commit, with the task: it needs no pull (issue 17).
    const { api, service, deployment } = await requestedDeployment("flow", "hunter2-secret");
    const { task } = await available;
    expect(task?.deploymentId).toBe(deployment.id);
    expect(task?.snapshot.services[0]?.variables).toContainEqual({ key: "TOKEN", value: "hunter2-secret", secret: true });
    expect(task?.snapshot.services[0]?.domains).toEqual(["web-dev-flow.localhost"]);
    // A pull finds the same task until it is acknowledged.
    expect((await request(engine, "task:pull", {})).task).toEqual(task);
    clock += 1_000;
    expect(await request(engine, "task:ack", { deploymentId: deployment.id, attempt: 1 })).toEqual({ ok: true });
    expect(await acknowledgement(deployment.id)).toEqual({ acknowledgedAt: clock, leaseExpiresAt: clock + 30_000, updatedAt: clock });
    expect((await request(engine, "task:pull", {})).task).toBeNull();
    // Announced again once acknowledged (a late or repeated notification): without the task, which the engine has.
    const again = new Promise((resolve) => engine.once("task:available", resolve));
    await notifyEngine(services.db, { clusterId: org.clusterId, type: "task:available", deploymentId: deployment.id });
    expect(await again).toEqual({});

    const at = new Date(clock).toISOString();
    const events = [
      { seq: 10, serviceId: null, step: "deployment", status: "started", at },
      { seq: 11, serviceId: service.id, step: "clone", status: "succeeded", at, commit: "a".repeat(40), durationMs: 5 },
    ];
    expect(await request(engine, "deployment:event", { deploymentId: deployment.id, events })).toEqual({ ok: true });
    // A re-sent batch (lost ack) is stored once.
    await request(engine, "deployment:event", { deploymentId: deployment.id, events });
    expect((await api.deployments.get({ deploymentId: deployment.id })).status).toBe("BUILDING");
    await request(engine, "log:batch", {
      stream: { kind: "deployment", deploymentId: deployment.id, serviceId: service.id },
      lines: [{ seq: 1, at, fd: "stdout", text: "npm ci" }],
    });
    await request(engine, "deployment:event", {
      deploymentId: deployment.id,
      events: [{ seq: 12, serviceId: null, step: "deployment", status: "succeeded", at }],
    });
    const done = await api.deployments.get({ deploymentId: deployment.id });
    expect(done).toMatchObject({ status: "DEPLOYED", commits: { [service.id]: "a".repeat(40) } });
    expect(await api.deployments.events({ deploymentId: deployment.id })).toHaveLength(3);
    expect((await api.deployments.logs({ deploymentId: deployment.id })).map((l) => l.text)).toEqual(["npm ci"]);
  });

  it("rejects malformed messages and other clusters' deployments without crashing", async () => {
    const other = await seedOrganization(services, "other");
    const { deployment } = await requestedDeployment("foreign", "x");
    const intruder = connectEngine(other.engineToken);
    await connected(intruder);
    expect(await request(intruder, "deployment:event", { deploymentId: "nope" })).toMatchObject({ ok: false, error: { code: "INVALID" } });
    const at = new Date().toISOString();
    expect(
      await request(intruder, "deployment:event", {
        deploymentId: deployment.id,
        events: [{ seq: 1, serviceId: null, step: "deployment", status: "failed", at }],
      }),
    ).toMatchObject({ ok: false, error: { code: "NOT_FOUND" } });
    expect(await request(intruder, "engine:heartbeat", { activeDeployments: [], services: [] })).toEqual({ ok: true, cancel: [], tasks: [] });
  });

  it("stores a stream's batches in the order they came, and refuses those sent behind one that failed until the engine sends again from it", async () => {
    const { service, engine } = await engineWithService("ordered");
    const stream = { kind: "service", serviceId: service.id, releaseId: "r1" };
    const at = new Date(clock).toISOString();
    const batch = (first: number, options: { pipelined?: true; text?: string } = {}) => ({
      stream,
      lines: [0, 1, 2].map((index) => ({ seq: first + index, at, fd: "stdout", text: options.text ?? `line ${first + index}` })),
      ...(options.pipelined ? { pipelined: true } : {}),
    });
    /** The seqs stored, in the order they were stored. */
    const storedSeqs = async () =>
      (await services.db.execute<{ seq: string }>(sql`select seq from log_lines where stream = ${`service:${service.id}`} order by id`)).rows.map((row) =>
        Number(row.seq),
      );

    // Twenty batches sent at once, as an engine's outbox does with several in flight: stored one after the other.
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, index) => request(engine, "log:batch", batch(index * 3, index > 0 ? { pipelined: true } : {}))),
    );
    expect(answers).toEqual(Array(20).fill({ ok: true }));
    expect(await storedSeqs()).toEqual([...Array(60).keys()]);

    // The second cannot be stored (PostgreSQL takes no NUL in text): the third, sent behind it, is refused rather than stored before it.
    const [first, failed, behind] = await Promise.all([
      request(engine, "log:batch", batch(100)),
      request(engine, "log:batch", batch(103, { pipelined: true, text: "nul \u0000 byte" })),
      request(engine, "log:batch", batch(106, { pipelined: true })),
    ]);
    expect(first).toEqual({ ok: true });
    expect(failed).toMatchObject({ ok: false, error: { code: "INTERNAL" } });
    expect(behind).toMatchObject({ ok: false, error: { code: "CONFLICT" } });
    // Sent again from the failed one (which goes through now), and a repeat of one stored: each line once, in order.
    expect(await request(engine, "log:batch", batch(103))).toEqual({ ok: true });
    expect(await request(engine, "log:batch", batch(106, { pipelined: true }))).toEqual({ ok: true });
    expect(await request(engine, "log:batch", batch(100))).toEqual({ ok: true });
    expect((await storedSeqs()).slice(60)).toEqual([...Array(9).keys()].map((index) => 100 + index));
    engine.disconnect();
  });

  it("disconnects the engine when its token is revoked", async () => {
    const engine = connectEngine(org.engineToken);
    await connected(engine);
    const dropped = new Promise((resolve) => engine.once("disconnect", resolve));
    await createCaller({ services, actor: org.as("ADMIN") }).clusters.revokeToken({ clusterId: org.clusterId });
    expect(await dropped).toBe("io server disconnect");
    await expect(connected(connectEngine(org.engineToken))).rejects.toThrow(/revoked/);
  });
});

describe("leases", () => {
  it("re-dispatches a deployment whose engine went silent, then fails it with the reason", async () => {
    const quiet = await seedOrganization(services, "quiet");
    const api = createCaller({ services, actor: quiet.as("DEVELOPER") });
    const project = await api.projects.create({ name: "lease" });
    const environment = await api.environments.create({ projectId: project.id, name: "dev" });
    await api.services.create({ environmentId: environment.id, name: "web", config: { git: { url: "file:///srv/app.git" } } });
    const { deployment } = await api.deployments.create({ environmentId: environment.id, action: "DEPLOY" });
    // The other tests' deployments are leased too, and expire with this clock: only this one is looked at.
    const outcomeOfThis = async () => (await reconcileLeases(services)).filter((outcome) => outcome.deploymentId === deployment.id);
    for (let attempt = 1; attempt < MAX_DISPATCH_ATTEMPTS; attempt++) {
      clock += 31_000;
      expect(await outcomeOfThis()).toEqual([{ deploymentId: deployment.id, outcome: "redispatched" }]);
    }
    expect((await api.deployments.get({ deploymentId: deployment.id })).attempt).toBe(MAX_DISPATCH_ATTEMPTS);
    clock += 31_000;
    expect(await outcomeOfThis()).toEqual([{ deploymentId: deployment.id, outcome: "failed" }]);
    const failed = await api.deployments.get({ deploymentId: deployment.id });
    expect(failed.status).toBe("DEPLOYMENT_ERROR");
    expect(failed.statusMessage).toMatch(/stopped responding/);
  });

  it("dispatches again a queued deployment whose dispatch job was lost, once it has waited with nothing before it", async () => {
    const stranded = await seedOrganization(services, "stranded");
    const api = createCaller({ services, actor: stranded.as("DEVELOPER") });
    const project = await api.projects.create({ name: "stranded" });
    const environment = await api.environments.create({ projectId: project.id, name: "dev" });
    await api.services.create({ environmentId: environment.id, name: "web", config: { git: { url: "file:///srv/app.git" } } });
    // The first is leased at once; the second waits behind it. The first ends while another
    // transaction holds the environment's lock (its end does not wait for it): the dispatch job
    // is left to lease the second.
    const { deployment: first } = await api.deployments.create({ environmentId: environment.id, action: "DEPLOY" });
    const { deployment: waiting } = await api.deployments.create({ environmentId: environment.id, action: "STOP" });
    const dispatchJobs = async () =>
      (
        await services.db.execute<{ key: string }>(
          sql`select key from graphile_worker.jobs where task_identifier = 'dispatch_deployment' and key = ${`dispatch:${environment.id}`}`,
        )
      ).rows;
    expect(await dispatchJobs()).toHaveLength(0);
    await services.db.transaction(async (tx) => {
      await lockEnvironment(tx, environment.id);
      await endDeployment(first.id);
    });
    expect(await dispatchJobs()).toHaveLength(1);
    // Its job is gone (it failed for good while the database was down, or was lost with its worker).
    await services.db.execute(sql`select graphile_worker.remove_job(${`dispatch:${environment.id}`})`);
    expect(await dispatchJobs()).toHaveLength(0);

    // Not yet: it has not waited long enough, and a fresh request may still be on its way.
    expect(await redispatchStaleQueues(services)).not.toContain(environment.id);
    await services.db.execute(
      sql`update deployments set created_at = now() - make_interval(secs => ${STALE_QUEUE_MS / 1000 + 1}) where environment_id = ${environment.id}`,
    );
    expect(await redispatchStaleQueues(services)).toContain(environment.id);
    expect(await dispatchJobs()).toHaveLength(1);
    expect((await dispatchEnvironment(services, environment.id))?.id).toBe(waiting.id);
  });

  it("leases a deployment asked for while another ran when that one ends, not before", async () => {
    const busy = await seedOrganization(services, "busy");
    const api = createCaller({ services, actor: busy.as("DEVELOPER") });
    const project = await api.projects.create({ name: "busy" });
    const environment = await api.environments.create({ projectId: project.id, name: "dev" });
    await api.services.create({ environmentId: environment.id, name: "web", config: { git: { url: "file:///srv/app.git" } } });
    const { deployment: running } = await api.deployments.create({ environmentId: environment.id, action: "DEPLOY" });
    const { deployment: next } = await api.deployments.create({ environmentId: environment.id, action: "RESTART" });
    const leased = async (id: string) => (await services.db.select().from(deployments).where(eq(deployments.id, id)))[0]!.leasedAt !== null;
    expect([await leased(running.id), await leased(next.id)]).toEqual([true, false]);
    // One deployment per environment at a time: a dispatch finds one running and leases nothing.
    expect(await dispatchEnvironment(services, environment.id)).toBeNull();
    // Its end leases the next (server/deployments/dispatch-on-end.test.ts has the rest).
    await endDeployment(running.id);
    expect([await leased(running.id), await leased(next.id)]).toEqual([true, true]);
    expect((await services.db.select().from(deployments).where(eq(deployments.id, next.id)))[0]!.attempt).toBe(1);
  });

  it("hands out again at once what an engine that came back as a new process was running, long before its lease runs out", async () => {
    const rebooted = await seedOrganization(services, "rebooted");
    const api = createCaller({ services, actor: rebooted.as("DEVELOPER") });
    const project = await api.projects.create({ name: "reboot" });
    const environment = await api.environments.create({ projectId: project.id, name: "dev" });
    await api.services.create({ environmentId: environment.id, name: "web", config: { git: { url: "file:///srv/app.git" } } });
    const { deployment } = await api.deployments.create({ environmentId: environment.id, action: "DEPLOY" });

    const [firstBoot, secondBoot] = [randomUUID(), randomUUID()];
    const first = connectEngine(rebooted.engineToken, firstBoot);
    await connected(first);
    expect((await request(first, "task:pull", {})).task.deploymentId).toBe(deployment.id);
    // Prepared once per database handle (engine-session.ts), it still writes each acknowledgement's own time.
    clock += 1_000;
    expect(await request(first, "task:ack", { deploymentId: deployment.id, attempt: 1 })).toEqual({ ok: true });
    expect(await acknowledgement(deployment.id)).toEqual({ acknowledgedAt: clock, leaseExpiresAt: clock + 30_000, updatedAt: clock });
    first.disconnect();

    // The same process reconnecting (a network blip) is still working on it: nothing is handed out.
    const reconnected = connectEngine(rebooted.engineToken, firstBoot);
    await connected(reconnected);
    expect((await request(reconnected, "task:pull", {})).task).toBeNull();
    reconnected.disconnect();

    // A new process lost it: the clock has not moved, so only the new boot id can hand it out.
    const restarted = connectEngine(rebooted.engineToken, secondBoot);
    await connected(restarted);
    const pulled = await request(restarted, "task:pull", {});
    expect(pulled.task).toMatchObject({ deploymentId: deployment.id, attempt: 2 });
    const events = await api.deployments.events({ deploymentId: deployment.id });
    expect(events.find((event) => event.step === "lease")?.message).toMatch(/engine restarted .*attempt 2/);
  });
});

describe("heartbeats", () => {
  it("carry the tasks this process heard leased until the engine acknowledges them, and read the others at least once a minute", async () => {
    const { api, environment, engine } = await engineWithService("beat-tasks");
    const heartbeat = async () => (await request(engine, "engine:heartbeat", { activeDeployments: [], services: [] })).tasks as EngineTask[];
    expect(await heartbeat()).toEqual([]);

    // Heard leased (its announcement reaches this process's listener after the commit): carried until acknowledged.
    const { deployment } = await api.deployments.create({ environmentId: environment.id, action: "DEPLOY" });
    await eventually(
      async () => (await heartbeat()).some((task) => task.deploymentId === deployment.id) || undefined,
      5_000,
      "the heartbeat to carry the task",
    );
    expect((await heartbeat()).map((task) => task.deploymentId)).toEqual([deployment.id]);
    expect(await request(engine, "task:ack", { deploymentId: deployment.id, attempt: 1 })).toEqual({ ok: true });
    expect(await heartbeat()).toEqual([]);

    // Waiting again with no announcement, as if this process's listener had missed it: the
    // heartbeats do not read it until a minute has passed since their last read, then carry it.
    await services.db.update(deployments).set({ acknowledgedAt: null }).where(eq(deployments.id, deployment.id));
    expect(await heartbeat()).toEqual([]);
    clock += TASKS_READ_MS;
    expect((await heartbeat()).map((task) => task.deploymentId)).toEqual([deployment.id]);
    engine.disconnect();
  });

  it("write a service's state when something shown of it changed, a deployment ended since, or a minute passed, and the cluster's stamp every 10 s", async () => {
    const { owner: beats, api, environment, service, engine } = await engineWithService("beats");
    const report = (restarts: number) => ({ serviceId: service.id, releaseId: "r1", state: "running", restarts, commit: "abc123" });
    const heartbeat = (restarts: number) => request(engine, "engine:heartbeat", { activeDeployments: [], services: [report(restarts)] });
    const stored = async () => {
      const [row] = await services.db.select({ runtime: serviceTable.runtime }).from(serviceTable).where(eq(serviceTable.id, service.id));
      const [cluster] = await services.db.select({ at: clusters.lastHeartbeatAt }).from(clusters).where(eq(clusters.id, beats.clusterId));
      return { reportedAt: row!.runtime?.reportedAt, restarts: row!.runtime?.restarts, lastHeartbeatAt: cluster!.at?.getTime() };
    };

    /** The service's status as every page shows it (the organization's overview). */
    const statusOfService = async () =>
      (await api.organization.overview({})).projects.flatMap((p) => p.environments).find((e) => e.id === environment.id)?.services[0]?.status;
    const helloAt = clock;
    expect(await heartbeat(0)).toEqual({ ok: true, cancel: [], tasks: [] });
    const first = await stored();
    expect(first).toEqual({ reportedAt: new Date(clock).toISOString(), restarts: 0, lastHeartbeatAt: helloAt });

    // The same report 5 s later writes nothing; 11 s after the hello the cluster's stamp is
    // renewed, with the next flush of the process's stamps.
    clock += 5_000;
    await heartbeat(0);
    await afterStampFlush();
    expect(await stored()).toEqual(first);
    clock += 6_000;
    await heartbeat(0);
    await afterStampFlush();
    expect(await stored()).toEqual({ ...first, lastHeartbeatAt: clock });

    // A restart is shown: written at once.
    clock += 1_000;
    await heartbeat(1);
    expect(await stored()).toMatchObject({ reportedAt: new Date(clock).toISOString(), restarts: 1 });

    // A deployment of the environment that ended after the report: written again, so that the
    // service shows what the engine reports rather than what the deployment left of it.
    const { deployment } = await api.deployments.create({ environmentId: environment.id, action: "DEPLOY" });
    clock += 1_000;
    const [row] = await services.db.select().from(deployments).where(eq(deployments.id, deployment.id));
    await appendControlEvent(services.db, services, row!, { step: "deployment", status: "canceled", message: "canceled in a test", at: new Date(clock) });
    expect(await statusOfService()).toBe("CANCELED");
    // Once the web process heard the end announced (after its commit): the report it remembered
    // as stored (the same 5 s ago) is read again, and found due.
    clock += 1_000;
    await eventually(async () => {
      await heartbeat(1);
      return (await stored()).reportedAt === new Date(clock).toISOString();
    }, 5_000);
    expect(await statusOfService()).toBe("running");
    const afterDeployment = await stored();
    clock += 1_000;
    await heartbeat(1);
    expect((await stored()).reportedAt).toBe(afterDeployment.reportedAt);

    // Nothing new for a minute: its report time is renewed all the same.
    clock += 60_000;
    await heartbeat(1);
    await afterStampFlush();
    expect(await stored()).toMatchObject({ reportedAt: new Date(clock).toISOString(), lastHeartbeatAt: clock });
    engine.disconnect();
  });
});
