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
 * A connection of the bench's own that LISTENs to the engine channel, as the web process does:
 * when a run's `task:available` reaches it tells where the time goes (before: the API call and
 * the lease; after: the relay to the engine's socket and the engine's pull). Notifications carry
 * no deployment id; the runs are one at a time, so a run's is the first after it started.
 */
async function listenForLeases(url: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  let notified: number | null = null;
  client.on("notification", (message) => {
    if (notified === null && message.payload?.includes('"task:available"')) notified = performance.now();
  });
  await client.query(`listen ${pg.escapeIdentifier(ENGINE_CHANNEL)}`);
  return {
    /** Forgets the previous run's notification. */
    reset: () => void (notified = null),
    notifiedAt: () => notified,
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
      await client.query("listen bench_floor");
      const started = performance.now();
      await sender.query("select pg_notify('bench_floor', '')");
      return (await arrived) - started;
    },
    close: () => client.end(),
  };
}

/**
 * Latency from a deployment's creation (the API call) to the engine receiving its task: the
 * lease, the Postgres notification, the socket message and the pull. The engine side is the real
 * agent over a real socket; its runtime only records the arrival and reports success, so that
 * the next deployment of the environment can be dispatched. Beside it, where the time goes
 * (marks taken in this process, not in the platform's code) and a bare NOTIFY between two
 * connections (the floor of one hop through Postgres) in the same run.
 */
export async function measureDispatchLatency(plane: ControlPlane, runs: number) {
  // A task can arrive before the API call that created it has returned: arrivals are kept until asked for.
  const arrivals = new Map<string, number>();
  const waiting = new Map<string, (at: number) => void>();
  const arrivalOf = (deploymentId: string) =>
    arrivals.has(deploymentId) ? Promise.resolve(arrivals.get(deploymentId)!) : new Promise<number>((resolve) => waiting.set(deploymentId, resolve));
  let report: (id: string) => void = () => {};
  const engine: Engine = {
    events: createEngineEvents(),
    start: async () => {},
    execute: async (task) => {
      const at = performance.now();
      arrivals.set(task.deploymentId, at);
      waiting.get(task.deploymentId)?.(at);
      report(task.deploymentId);
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

  const leases = await listenForLeases(plane.databaseUrl);
  const sender = new pg.Client({ connectionString: plane.databaseUrl });
  await sender.connect();
  const samples: number[] = [];
  const marks = { apiCall: [] as number[], toLease: [] as number[], leaseToEngine: [] as number[], notifyFloor: [] as number[] };
  for (let i = 0; i < runs; i++) {
    marks.notifyFloor.push(await leases.notifyRoundTrip(sender));
    leases.reset();
    const started = performance.now();
    const { deployment } = await api.deployments.create({ environmentId: environment.id, action: "RESTART" });
    const returned = performance.now();
    const arrival = await arrivalOf(deployment.id);
    samples.push(arrival - started);
    marks.apiCall.push(returned - started);
    const leased = leases.notifiedAt();
    if (leased !== null) {
      marks.toLease.push(leased - started);
      marks.leaseToEngine.push(arrival - leased);
    }
    // Wait for the projection to close the deployment so the next one is not merged into it.
    while ((await api.deployments.get({ deploymentId: deployment.id })).status !== "DEPLOYED") await new Promise((r) => setTimeout(r, 2));
  }
  await agent.shutdown();
  await Promise.all([leases.close(), sender.end()]);
  await fs.rm(outboxDir, { recursive: true, force: true });
  const figures = (values: number[]) => ({ p50: percentile(values, 50), p99: percentile(values, 99) });
  return {
    p50: percentile(samples, 50),
    p99: percentile(samples, 99),
    runs,
    apiCall: figures(marks.apiCall),
    toLease: figures(marks.toLease),
    leaseToEngine: figures(marks.leaseToEngine),
    notifyFloor: figures(marks.notifyFloor),
  };
}
