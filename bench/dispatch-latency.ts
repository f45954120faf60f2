import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { createAgent } from "../engine/agent";
import type { Engine } from "../engine/core";
import { createCaller } from "../server/api/root";
import { percentile } from "./stats";
import type { startBenchControlPlane } from "./control-plane";
import { createEngineEvents } from "../engine/engine-events";

type ControlPlane = Awaited<ReturnType<typeof startBenchControlPlane>>;

/**
 * Latency from a deployment's creation (the API call) to the engine receiving its task: the
 * job, the dispatch, the Postgres notification, the socket message and the pull. The engine
 * side is the real agent over a real socket; its runtime only records the arrival and reports
 * success, so that the next deployment of the environment can be dispatched.
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

  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    const { deployment } = await api.deployments.create({ environmentId: environment.id, action: "RESTART" });
    const arrival = await arrivalOf(deployment.id);
    samples.push(arrival - started);
    // Wait for the projection to close the deployment so the next one is not merged into it.
    while ((await api.deployments.get({ deploymentId: deployment.id })).status !== "DEPLOYED") await new Promise((r) => setTimeout(r, 2));
  }
  await agent.shutdown();
  await fs.rm(outboxDir, { recursive: true, force: true });
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), runs };
}
