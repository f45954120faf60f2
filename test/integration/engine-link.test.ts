/**
 * The engine's link to the control plane (engine/agent.ts) against a real web process on a real
 * PostgreSQL: what it does with messages too long for the protocol, with a control plane that
 * cannot write, with a fast log through dropped connections, with a control plane of another
 * protocol version, and how a task whose announcement was lost reaches it (with the heartbeat's
 * answer, or by pulling where one side predates that).
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { sql } from "drizzle-orm";
import pino from "pino";
import type { Socket as ServerSocket } from "socket.io";
import { io } from "socket.io-client";
import { z } from "zod";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgent } from "../../engine/agent";
import type { Engine, EngineReporter } from "../../engine/core";
import { ackError, ENGINE_NAMESPACE, engineToServer, EVENT_MESSAGE_MAX, HEARTBEAT_TASKS_MAX, PROTOCOL_VERSION, type EngineTask } from "../../engine/protocol";
import { createCaller } from "../../server/api/root";
import type { Services } from "../../server/context";
import { UI_NAMESPACE, type LogLines } from "../../server/realtime/ui-protocol";
import { startWebServer } from "../../server/web-server";
import { createTestDatabase, withDatabaseDown, type TestDatabase } from "../database";
import { eventually } from "../engine-harness";
import { seedOrganization, testServices, type SeededOrganization } from "../support/seed";
import { createEngineEvents } from "../../engine/engine-events";

let database: TestDatabase;
let services: Services;
let org: SeededOrganization;
let web: Awaited<ReturnType<typeof startWebServer>>;
const agents: Array<ReturnType<typeof createAgent>> = [];
const outboxDirs: string[] = [];

/** An outbox folder of its own for each agent, as each engine has its home. */
async function outboxDir() {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-link-outbox-"));
  outboxDirs.push(dir);
  return dir;
}

beforeAll(async () => {
  database = await createTestDatabase();
  services = testServices(database.db, { leaseSeconds: 60 });
  org = await seedOrganization(services, "link");
  web = await startWebServer({ services, databaseUrl: database.url, logger: pino({ level: "silent" }), port: 0, host: "127.0.0.1" });
});

afterAll(async () => {
  for (const agent of agents) await agent.shutdown();
  await web?.close();
  for (const dir of outboxDirs) await fs.rm(dir, { recursive: true, force: true });
});

/** An engine with nothing to run: these tests exercise the link, and report through its reporter. `executed`: the tasks handed to it. */
function idleEngine(executed: EngineTask[] = []): Engine {
  return {
    events: createEngineEvents(),
    start: async () => {},
    execute: async (task) => void executed.push(task),
    cancel: () => {},
    activeDeployments: () => [],
    services: () => [],
    shutdown: async () => {},
  };
}

/** Log records of the agent, as objects, to wait for what it says. */
function recordingLogger() {
  const records: Array<{ msg: string; reason?: string; level: number }> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString().split("\n").filter(Boolean)) records.push(JSON.parse(text));
      done();
    },
  });
  return { logger: pino({ level: "debug" }, stream), records };
}

async function startAgent(
  options: { token?: string; heartbeatMs?: number; protocolVersion?: number; logger?: pino.Logger; onRefused?: (reason: string) => void } = {},
  executed: EngineTask[] = [],
) {
  let reporter: EngineReporter | null = null;
  const agent = createAgent(
    {
      url: web.url,
      outboxDir: await outboxDir(),
      token: org.engineToken,
      engineVersion: "test",
      capabilities: { runtime: "local", serviceKinds: ["APPLICATION"], databases: [] },
      logger: options.logger ?? pino({ level: "silent" }),
      metricsIntervalMs: 0,
      ...options,
    },
    (given) => {
      reporter = given;
      return idleEngine(executed);
    },
  );
  agents.push(agent);
  return { agent, reporter: () => reporter! };
}

async function dispatchedDeployment(name: string, owner: SeededOrganization = org) {
  const api = createCaller({ services, actor: owner.as("DEVELOPER") });
  const project = await api.projects.create({ name });
  const environment = await api.environments.create({ projectId: project.id, name: "dev" });
  const service = await api.services.create({ environmentId: environment.id, name: "web", config: { git: { url: "file:///srv/app.git" } } });
  const { deployment } = await api.deployments.create({ environmentId: environment.id, action: "DEPLOY" });
  return { api, service, deployment };
}

describe("the engine's link to the control plane", () => {
  it("shortens a 1 MB event message to what the protocol carries, keeping its beginning and its end", async () => {
    const { api, service, deployment } = await dispatchedDeployment("long");
    const { agent, reporter } = await startAgent();
    await agent.start();
    const message = `build command "npm run build" exited with code 1:\n${"x".repeat(1_000_000)}\nError: the last line says why`;
    reporter().event(deployment.id, { serviceId: service.id, step: "build", status: "failed", message });
    reporter().event(deployment.id, { serviceId: null, step: "deployment", status: "failed", message: "web: build failed" });

    const done = await eventually(
      async () => {
        const current = await api.deployments.get({ deploymentId: deployment.id });
        return current.status === "BUILD_ERROR" ? current : undefined;
      },
      10_000,
      "the failed deployment to be recorded",
    );
    expect(done.status).toBe("BUILD_ERROR");
    const stored = (await api.deployments.events({ deploymentId: deployment.id })).find((event) => event.step === "build");
    expect(stored?.message?.length).toBeLessThanOrEqual(EVENT_MESSAGE_MAX);
    expect(stored?.message).toMatch(/^build command "npm run build" exited with code 1:/);
    expect(stored?.message).toMatch(/characters omitted/);
    expect(stored?.message).toMatch(/Error: the last line says why$/);
  });

  it("keeps the events the control plane cannot store while its database is down, and stores them once it is back", async () => {
    const { api, deployment } = await dispatchedDeployment("outage");
    const { logger, records } = recordingLogger();
    const { agent, reporter } = await startAgent({ logger });
    await agent.start();
    await eventually(async () => records.some((record) => record.msg === "connected to the control plane") || undefined, 10_000, "the agent to connect");

    await withDatabaseDown(database, async () => {
      reporter().event(deployment.id, { serviceId: null, step: "deployment", status: "started", message: "DEPLOY web" });
      reporter().event(deployment.id, { serviceId: null, step: "deployment", status: "succeeded", message: "deployed 1 service" });
      await eventually(
        async () => records.some((record) => record.msg.includes("keeping it and retrying")) || undefined,
        10_000,
        "the refused batch to be kept",
      );
    });

    const done = await eventually(
      async () => {
        const current = await api.deployments.get({ deploymentId: deployment.id });
        return current.status === "DEPLOYED" ? current : undefined;
      },
      20_000,
      "the kept events to be stored",
    );
    expect(done.status).toBe("DEPLOYED");
    expect((await api.deployments.events({ deploymentId: deployment.id })).filter((event) => event.step === "deployment").map((event) => event.status)).toEqual(
      expect.arrayContaining(["started", "succeeded"]),
    );
    expect(records.some((record) => record.msg.includes("dropping"))).toBe(false);
  });

  it("ships a fast log with several batches in flight through connections the web process drops: each line stored once, in order, and followed once", async () => {
    const { service } = await dispatchedDeployment("burst");
    const key = `service:${service.id}`;
    // A connection of its own (a browser's), not multiplexed with the engine's that the web process drops.
    const follower = io(`${web.url}${UI_NAMESPACE}`, { auth: { token: await org.apiToken("DEVELOPER") }, transports: ["websocket"], forceNew: true });
    const followed: string[] = [];
    follower.on("log:lines", (batch: LogLines) => followed.push(...batch.lines.map((line) => line.text)));
    try {
      expect(await follower.timeout(5_000).emitWithAck("subscribe", { room: key })).toEqual({ ok: true });
      const { agent, reporter } = await startAgent();
      await agent.start();
      await eventually(async () => agent.connected() || undefined, 10_000, "the agent to connect");

      // Lines as a runtime reads them from an app's log, a chunk a turn, while the web process drops the engine twice.
      const total = 20_000;
      const stream = { kind: "service" as const, serviceId: service.id, releaseId: "r1" };
      const writing = (async () => {
        for (let written = 0; written < total;) {
          for (const end = written + 250; written < end; written++) reporter().log(stream, "stdout", `line ${written}`);
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
      })();
      const storedTexts = async () =>
        (await services.db.execute<{ text: string }>(sql`select text from log_lines where stream = ${key} order by id`)).rows.map((row) => row.text);
      const drops: number[] = [];
      for (const after of [3_000, 10_000]) {
        await eventually(async () => ((await storedTexts()).length >= after ? true : undefined), 30_000, `${after} lines to be stored`);
        drops.push((await storedTexts()).length);
        web.io.of(ENGINE_NAMESPACE).disconnectSockets(true);
      }
      await writing;
      // Mid-stream: lines were still to come at each drop.
      expect(drops.every((stored) => stored < total)).toBe(true);

      const expected = Array.from({ length: total }, (_, index) => `line ${index}`);
      await eventually(async () => ((await storedTexts()).length === total ? true : undefined), 60_000, "every line to be stored");
      // Stored in the order they were written (the table's id is its order of insertion), none twice.
      expect(await storedTexts()).toEqual(expected);
      await eventually(async () => (followed.length >= total ? true : undefined), 10_000, "the follower to have every line");
      expect(followed.toSorted((a, b) => Number(a.split(" ")[1]) - Number(b.split(" ")[1]))).toEqual(expected);
    } finally {
      follower.disconnect();
    }
  });

  it("tells an engine of a newer protocol to upgrade the control plane, and keeps trying instead of exiting", async () => {
    const { logger, records } = recordingLogger();
    let refused = false;
    const { agent } = await startAgent({ protocolVersion: PROTOCOL_VERSION + 1, logger, onRefused: () => (refused = true) });
    await agent.start();
    const attempts = () => records.filter((record) => record.msg === "the control plane did not accept this engine; retrying");
    await eventually(async () => (attempts().length >= 2 ? true : undefined), 15_000, "two handshake attempts");
    expect(attempts()[0]?.reason).toMatch(/newer than the control plane accepts .*upgrade the control plane/);
    expect(refused).toBe(false);
  });

  it("stops for good when its token is refused", async () => {
    let refusedWith: string | null = null;
    const agent = createAgent(
      {
        url: web.url,
        outboxDir: await outboxDir(),
        token: "swe_not-a-token",
        engineVersion: "test",
        capabilities: { runtime: "local", serviceKinds: ["APPLICATION"], databases: [] },
        logger: pino({ level: "silent" }),
        metricsIntervalMs: 0,
        onRefused: (reason) => (refusedWith = reason),
      },
      () => idleEngine(),
    );
    agents.push(agent);
    await agent.start();
    await eventually(async () => refusedWith ?? undefined, 10_000, "the refusal");
    expect(refusedWith).toMatch(/Unknown or revoked engine token/);
  });
});

/**
 * What the web process receives from a cluster's engines: the messages by name, the tasks its
 * heartbeat answers carried, and the engines' sockets. `olderRelease`: the heartbeats are
 * answered as a control plane that predates `tasks` answers them (the same answer without it).
 */
function watchCluster(clusterId: string, options: { olderRelease?: boolean } = {}) {
  const received: string[] = [];
  const answeredTasks: string[] = [];
  const sockets: ServerSocket[] = [];
  /** Heartbeats held back (not yet handled), while holding. */
  let held: Array<() => void> | null = null;
  /** Heartbeats being handled: passed on, not yet answered. */
  let handling = 0;
  web.io.of(ENGINE_NAMESPACE).on("connection", (socket: ServerSocket) => {
    if (socket.data.clusterId !== clusterId) return;
    sockets.push(socket);
    socket.use((packet, next) => {
      received.push(String(packet[0]));
      const ack: unknown = packet.at(-1);
      if (packet[0] === "engine:heartbeat" && typeof ack === "function") {
        packet[packet.length - 1] = ({ tasks, ...older }: { tasks?: EngineTask[] }) => {
          handling--;
          answeredTasks.push(...(tasks ?? []).map((task) => task.deploymentId));
          ack(options.olderRelease ? older : { tasks, ...older });
        };
        const handle = () => {
          handling++;
          next();
        };
        if (held) return void held.push(handle);
        return handle();
      }
      next();
    });
  });
  return {
    count: (name: string) => received.filter((one) => one === name).length,
    answeredTasks,
    /** Takes the engines' sockets out of the cluster's room: a lease's announcement reaches none of them, as when it is lost. */
    loseAnnouncements() {
      for (const socket of sockets) void socket.leave(`cluster:${clusterId}`);
      expect(web.io.of(ENGINE_NAMESPACE).adapter.rooms.get(`cluster:${clusterId}`)?.size ?? 0).toBe(0);
    },
    /**
     * Handles no heartbeat until the returned function is called; then those held back. Returns
     * once the heartbeat being handled, if any, was answered: it may have read the tasks before.
     */
    async holdHeartbeats() {
      held = [];
      await eventually(() => handling === 0 || undefined, 10_000, "the heartbeat being handled to be answered");
      return () => {
        const waiting = held ?? [];
        held = null;
        for (const next of waiting) next();
      };
    },
  };
}

const acknowledgedAt = async (deploymentId: string) =>
  (await services.db.execute<{ acknowledged_at: Date | null }>(sql`select acknowledged_at from deployments where id = ${deploymentId}`)).rows[0]
    ?.acknowledged_at ?? null;

/** A connected agent (heartbeats every 300 ms) of a new organization, whose cluster's announcements are lost from now on. */
async function agentMissingAnnouncements(name: string) {
  const owner = await seedOrganization(services, name);
  const watched = watchCluster(owner.clusterId);
  const executed: EngineTask[] = [];
  const { agent } = await startAgent({ token: owner.engineToken, heartbeatMs: 300 }, executed);
  await agent.start();
  // Connected: the connection's pull (engines still pull as they connect) and a heartbeat after it.
  await eventually(() => (watched.count("task:pull") >= 1 && watched.count("engine:heartbeat") >= 2) || undefined, 10_000, "the agent to connect");
  watched.loseAnnouncements();
  return { owner, watched, executed };
}

describe("a task whose announcement was lost (issue 17, item 4)", () => {
  it("reaches the engine with its next heartbeat's answer, with no pull", async () => {
    const { owner, watched, executed } = await agentMissingAnnouncements("beat");
    const pulls = watched.count("task:pull");

    const { deployment } = await dispatchedDeployment("lost", owner);
    await eventually(() => executed.some((task) => task.deploymentId === deployment.id) || undefined, 10_000, "the engine to get the task");
    expect(watched.answeredTasks).toContain(deployment.id);
    expect(await eventually(() => acknowledgedAt(deployment.id), 5_000, "the task's acknowledgement")).toBeTruthy();
    // Two more heartbeats answered: none followed by a pull, and the task not handed to the engine again.
    const heartbeats = watched.count("engine:heartbeat");
    await eventually(() => watched.count("engine:heartbeat") >= heartbeats + 2 || undefined, 5_000, "two more heartbeats");
    expect(watched.count("task:pull")).toBe(pulls);
    expect(executed.filter((task) => task.deploymentId === deployment.id)).toHaveLength(1);
  });

  it("is pulled when a heartbeat's answer is full: more tasks may wait than it carries", async () => {
    const { owner, watched, executed } = await agentMissingAnnouncements("full-beat");
    // One more task than an answer carries, all leased before the next heartbeat is handled.
    const release = await watched.holdHeartbeats();
    const leased: string[] = [];
    for (let index = 0; index <= HEARTBEAT_TASKS_MAX; index++) leased.push((await dispatchedDeployment(`full-${index}`, owner)).deployment.id);
    const pulls = watched.count("task:pull");
    release();

    await eventually(() => leased.every((id) => executed.some((task) => task.deploymentId === id)) || undefined, 10_000, "the engine to get every task");
    expect(watched.answeredTasks.slice(0, HEARTBEAT_TASKS_MAX)).toEqual(leased.slice(0, HEARTBEAT_TASKS_MAX));
    expect(watched.count("task:pull")).toBeGreaterThan(pulls);
    expect(executed).toHaveLength(leased.length);
  });

  it("reaches it by pulling after each heartbeat when the control plane predates tasks in the heartbeat's answer", async () => {
    const owner = await seedOrganization(services, "older-plane");
    const watched = watchCluster(owner.clusterId, { olderRelease: true });
    const executed: EngineTask[] = [];
    const { agent } = await startAgent({ token: owner.engineToken, heartbeatMs: 300 }, executed);
    await agent.start();
    await eventually(() => watched.count("engine:heartbeat") >= 2 || undefined, 10_000, "the agent to connect");
    watched.loseAnnouncements();
    const pulls = watched.count("task:pull");

    const { deployment } = await dispatchedDeployment("older-plane", owner);
    await eventually(() => executed.some((task) => task.deploymentId === deployment.id) || undefined, 10_000, "the engine to get the task");
    // The heartbeats carried it, but the engine never saw it there: it came by a pull.
    expect(watched.answeredTasks).toContain(deployment.id);
    expect(watched.count("task:pull")).toBeGreaterThan(pulls);
    expect(await eventually(() => acknowledgedAt(deployment.id), 5_000, "the task's acknowledgement")).toBeTruthy();
  });

  it("reaches an engine that predates tasks in the heartbeat's answer: it reads the answer as before, and its pull after it finds the task", async () => {
    const owner = await seedOrganization(services, "older-engine");
    const { deployment } = await dispatchedDeployment("older-engine", owner);
    // The engine of that release, at the protocol level: its heartbeat, then its pull.
    const socket = io(`${web.url}${ENGINE_NAMESPACE}`, {
      auth: {
        token: owner.engineToken,
        protocolVersion: PROTOCOL_VERSION,
        engineVersion: "older",
        capabilities: { runtime: "local", serviceKinds: ["APPLICATION"] },
      },
      transports: ["websocket"],
      reconnection: false,
      forceNew: true,
    });
    const request = (name: string, payload: unknown) => socket.timeout(5_000).emitWithAck(name, payload);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once("connect", resolve);
        socket.once("connect_error", reject);
      });
      const answer = await request("engine:heartbeat", { activeDeployments: [], services: [] });
      expect(answer.tasks.map((task: EngineTask) => task.deploymentId)).toEqual([deployment.id]);
      // Its release's schema of the answer, without `tasks`: the answer still reads, the field dropped.
      const olderAnswer = z.union([z.object({ ok: z.literal(true), cancel: z.array(z.string().uuid()) }), ackError]);
      expect(olderAnswer.parse(answer)).toEqual({ ok: true, cancel: [] });
      const pulled = engineToServer["task:pull"][1].parse(await request("task:pull", {}));
      expect(pulled.ok && pulled.task?.deploymentId).toBe(deployment.id);
      expect(await request("task:ack", { deploymentId: deployment.id, attempt: 1 })).toEqual({ ok: true });
      // Acknowledged: neither the heartbeat nor a pull hands it out again.
      expect((await request("engine:heartbeat", { activeDeployments: [deployment.id], services: [] })).tasks).toEqual([]);
      expect(await request("task:pull", {})).toEqual({ ok: true, task: null });
    } finally {
      socket.disconnect();
    }
  });
});
