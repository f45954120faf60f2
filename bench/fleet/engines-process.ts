import fs from "node:fs/promises";
import path from "node:path";
import pino from "pino";
import { createAgent } from "../../engine/agent";
import { createEngine, type Engine } from "../../engine/core";
import { createInstantRuntime } from "./instant-runtime";

/**
 * One process of the benchmark's engine fleet (bench/fleet/fleet.ts forks a few): many engines,
 * each the real agent and orchestration with its own cluster token, socket and outbox, over an
 * instant runtime. They share one engine home, and so one router process: deployment outcomes
 * are kept per deployment id and job outputs per environment, which no two of them share.
 */
export type FleetCommand =
  /** `routerPort`: chosen by the parent, so that no two processes of the fleet pick the same free port. */
  { type: "start"; url: string; tokens: string[]; dir: string; routerPort: number } | { type: "count" } | { type: "stop" };
export type FleetReport =
  | { type: "connected"; count: number }
  /** An engine got a task (the agent handed it to the engine): wall-clock milliseconds, comparable across processes. */
  | { type: "received"; deploymentId: string; at: number }
  | { type: "count"; heartbeats: number; connected: number }
  | { type: "stopped" };

const send = (report: FleetReport) => process.send!(report);
const logger = pino({ level: "error" }, pino.destination(2));
/** How many engines handshake at once: the first connection of a thousand is a burst a real fleet spreads over its boots. */
const CONNECTING_AT_ONCE = 20;

let heartbeats = 0;
const agents: ReturnType<typeof createAgent>[] = [];

async function startFleet(url: string, tokens: string[], dir: string, routerPort: number) {
  const home = path.join(dir, "home");
  const connected = () => agents.filter((agent) => agent.connected()).length;
  for (const [index, token] of tokens.entries()) {
    const outboxDir = path.join(dir, "outbox", String(index));
    await fs.mkdir(outboxDir, { recursive: true });
    const agent = createAgent(
      { url, token, outboxDir, engineVersion: "bench-fleet", capabilities: { runtime: "local", serviceKinds: ["APPLICATION"], databases: [] }, logger },
      (reporter): Engine => {
        const engine = createEngine({ home, routerPort, reporter, logger, runtime: () => createInstantRuntime() });
        return {
          ...engine,
          execute(task) {
            send({ type: "received", deploymentId: task.deploymentId, at: performance.timeOrigin + performance.now() });
            return engine.execute(task);
          },
          // The agent reads the services once per heartbeat: counting here counts the heartbeats sent.
          services() {
            heartbeats++;
            return engine.services();
          },
        };
      },
    );
    agents.push(agent);
    // The first engine starts the shared router; the others find it running.
    await agent.start();
    if (agents.length % CONNECTING_AT_ONCE === 0 || index === tokens.length - 1) {
      while (connected() < agents.length) await new Promise((resolve) => setTimeout(resolve, 50));
      send({ type: "connected", count: agents.length });
    }
  }
}

process.on("message", (command: FleetCommand) => {
  if (command.type === "start") void startFleet(command.url, command.tokens, command.dir, command.routerPort).catch(fail);
  else if (command.type === "count") send({ type: "count", heartbeats, connected: agents.filter((agent) => agent.connected()).length });
  else void Promise.all(agents.map((agent) => agent.shutdown())).then(() => send({ type: "stopped" }), fail);
});

function fail(error: unknown) {
  console.error(error);
  process.exit(1);
}
