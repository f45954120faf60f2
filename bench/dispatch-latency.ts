import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import pino from "pino";
import { createAgent } from "../engine/agent";
import type { Engine } from "../engine/core";
import { createCaller } from "../server/api/root";
import { percentile } from "./stats";
import type { startBenchControlPlane } from "./control-plane";
import { createEngineEvents } from "../engine/engine-events";
import { ENGINE_CHANNEL } from "../server/deployments/engine-channel";

type ControlPlane = Awaited<ReturnType<typeof startBenchControlPlane>>;

/**
 * A connection of the bench's own that LISTENs as the web process does: when a run's
 * `task:available` reaches it tells where the time goes. Notifications carry no deployment id; the runs are one at a time, so a run's is the
 * first after it started.
 */
async function listenForMarks(url: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  let leased: number | null = null;
  client.on("notification", (message) => {
    if (message.channel === ENGINE_CHANNEL && message.payload?.includes('"task:available"')) leased ??= performance.now();
  });
  for (const channel of [ENGINE_CHANNEL, "bench_floor"]) await client.query(`listen ${pg.escapeIdentifier(channel)}`);
  return {
    /** Forgets the previous run's notifications. */
    reset() {
      leased = null;
    },
    leasedAt: () => leased,
    /** A NOTIFY from another connection until it reaches this one: the floor of any notification hop. */
    async notifyRoundTrip(sender: pg.Client) {
      const arrived = new Promise<number>((resolve) => {
        const onMessage = (message: pg.Notification) => {
          if (message.channel !== "bench_floor") return;
          client.off("notification", onMessage);
          resolve(performance.now());
        };
        client.on("notification", onMessage);
      });
      const started = performance.now();
      await sender.query("select pg_notify('bench_floor', '')");
      return (await arrived) - started;
    },
    close: () => client.end(),
  };
}

/** Deployments before the measured ones: the environment's history, which the statistics describe. */
const WARM_UP_RUNS = 50;

/**
 * Latency from a deployment's creation (the API call) to the engine receiving its task: the
 * lease, the Postgres notification, and the socket message that carries the task. The engine
 * side is the real agent over a real socket; its runtime only records the arrival and reports
 * success, so that the next deployment of the environment can be dispatched. Beside it, in the
 * same run: where the time goes (marks taken in this process, not in the platform's code), a
 * bare NOTIFY between two connections (the floor of one hop through Postgres), and the path of a
 * deployment queued behind another: from the engine reporting the end of the one before it, whose
 * transaction leases it (a worker's dispatch job did before, issue 17), to its engine having it.
 */
export async function measureDispatchLatency(plane: ControlPlane, runs: number) {
  // A task can arrive before the API call that created it has returned: arrivals are kept until asked for.
  const arrivals = new Map<string, number>();
  const waiting = new Map<string, (at: number) => void>();
  const arrivalOf = (deploymentId: string) =>
    arrivals.has(deploymentId) ? Promise.resolve(arrivals.get(deploymentId)!) : new Promise<number>((resolve) => waiting.set(deploymentId, resolve));
  let report: (id: string) => void = () => {};
  /** When set, the next task is held (reported done only when released) so that another queues behind it. */
  let holdNext = false;
  let held: (() => void) | null = null;
  const engine: Engine = {
    events: createEngineEvents(),
    start: async () => {},
    execute: async (task) => {
      const at = performance.now();
      arrivals.set(task.deploymentId, at);
      waiting.get(task.deploymentId)?.(at);
      if (!holdNext) return report(task.deploymentId);
      holdNext = false;
      held = () => report(task.deploymentId);
    },
    cancel: () => {},
    activeDeployments: () => [],
    services: () => [],
    shutdown: async () => {},
  };
  const outboxDir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-bench-outbox-"));
  const agent = createAgent(
    {
      url: plane.webUrl,
      outboxDir,
      token: plane.org.engineToken,
      engineVersion: "bench",
      capabilities: { runtime: "local", serviceKinds: ["APPLICATION"], databases: [] },
      logger: pino({ level: "silent" }),
    },
    (reporter) => {
      report = (id) => {
        reporter.event(id, { serviceId: null, step: "deployment", status: "started" });
        reporter.event(id, { serviceId: null, step: "deployment", status: "succeeded" });
      };
      return engine;
    },
  );
  await agent.start();

  const api = createCaller({ services: plane.services, actor: plane.org.as("DEVELOPER") });
  const project = await api.projects.create({ name: "latency" });
  const environment = await api.environments.create({ projectId: project.id, name: "dev" });
  await api.services.create({ environmentId: environment.id, name: "web", config: { git: { url: "file:///nowhere.git" } } });

  const marks = await listenForMarks(plane.databaseUrl);
  const sender = new pg.Client({ connectionString: plane.databaseUrl });
  await sender.connect();
  const deployed = async (deploymentId: string) => {
    // The projection closes the deployment, so that the next one is not merged into it.
    while ((await api.deployments.get({ deploymentId })).status !== "DEPLOYED") await new Promise((r) => setTimeout(r, 2));
  };
  // A history first, then statistics of it, as a database that has run for more than a minute
  // has them (autovacuum analyzes a table once 10% of it changed): on tables never analyzed the
  // planner sorts the environment's whole history for its latest deployment, 4 ms at 200 runs.
  for (let i = 0; i < WARM_UP_RUNS; i++) {
    const { deployment } = await api.deployments.create({ environmentId: environment.id, action: "RESTART" });
    await arrivalOf(deployment.id);
    await deployed(deployment.id);
  }
  await sender.query("analyze");
  const samples: number[] = [];
  const hops = { apiCall: [] as number[], toLease: [] as number[], leaseToEngine: [] as number[], notifyFloor: [] as number[] };
  for (let i = 0; i < runs; i++) {
    hops.notifyFloor.push(await marks.notifyRoundTrip(sender));
    marks.reset();
    const started = performance.now();
    const { deployment } = await api.deployments.create({ environmentId: environment.id, action: "RESTART" });
    const returned = performance.now();
    const arrival = await arrivalOf(deployment.id);
    samples.push(arrival - started);
    hops.apiCall.push(returned - started);
    const leased = marks.leasedAt();
    if (leased !== null) {
      hops.toLease.push(leased - started);
      hops.leaseToEngine.push(arrival - leased);
    }
    await deployed(deployment.id);
  }

  // A deployment asked for while another runs: leased by the transaction that records the running one's end.
  const queuedBehind = { endToLease: [] as number[], endToEngine: [] as number[] };
  for (let i = 0; i < Math.ceil(runs / 4); i++) {
    holdNext = true;
    const { deployment: ahead } = await api.deployments.create({ environmentId: environment.id, action: "RESTART" });
    await arrivalOf(ahead.id);
    const { deployment: queued } = await api.deployments.create({ environmentId: environment.id, action: "DEPLOY" });
    marks.reset();
    // The engine reports the one ahead done (its outbox sends the events at once).
    const ended = performance.now();
    held!();
    const arrival = await arrivalOf(queued.id);
    const leased = marks.leasedAt();
    if (leased !== null) {
      queuedBehind.endToLease.push(leased - ended);
      queuedBehind.endToEngine.push(arrival - ended);
    }
    await deployed(queued.id);
  }
  await agent.shutdown();
  await Promise.all([marks.close(), sender.end()]);
  await fs.rm(outboxDir, { recursive: true, force: true });
  const figures = (values: number[]) => ({ p50: percentile(values, 50), p99: percentile(values, 99) });
  return {
    p50: percentile(samples, 50),
    p99: percentile(samples, 99),
    runs,
    apiCall: figures(hops.apiCall),
    toLease: figures(hops.toLease),
    leaseToEngine: figures(hops.leaseToEngine),
    notifyFloor: figures(hops.notifyFloor),
    queuedBehind: { runs: queuedBehind.endToLease.length, endToLease: figures(queuedBehind.endToLease), endToEngine: figures(queuedBehind.endToEngine) },
  };
}
