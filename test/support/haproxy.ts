import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { testPort } from "./ports";
import { eventually } from "../engine-harness";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** The load balancer configuration the project ships, used as is. */
export const HAPROXY_CONFIG = path.join(repoRoot, "deploy", "haproxy.cfg");

export type Haproxy = {
  url: string;
  /** Its process (a bench counts its CPU). */
  pid: number;
  /** Each web server's state as HAProxy's health checks see it ("UP", "DOWN", …), from its stats page. */
  states: () => Promise<Record<string, string>>;
  waitFor: (server: string, state: string, timeoutMs?: number) => Promise<void>;
  output: () => string;
  stop: () => Promise<void>;
};

/** Debian's HAProxy in the foreground with deploy/haproxy.cfg, in front of two web processes on 127.0.0.1. */
export async function startHaproxy(webPorts: [number, number]): Promise<Haproxy> {
  const [port, statsPort] = [await testPort(), await testPort()];
  const child = spawn("haproxy", ["-db", "-f", HAPROXY_CONFIG], {
    env: {
      ...process.env,
      SLIPWAY_LB_BIND: `127.0.0.1:${port}`,
      SLIPWAY_LB_STATS: `127.0.0.1:${statsPort}`,
      SLIPWAY_WEB1: `127.0.0.1:${webPorts[0]}`,
      SLIPWAY_WEB2: `127.0.0.1:${webPorts[1]}`,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  const states = async () => {
    const csv = await (await fetch(`http://127.0.0.1:${statsPort}/stats;csv`, { signal: AbortSignal.timeout(2_000) })).text();
    const [header, ...rows] = csv.trim().split("\n");
    const columns = header!.replace(/^# /, "").split(",");
    const [proxy, server, status] = ["pxname", "svname", "status"].map((name) => columns.indexOf(name));
    const found: Record<string, string> = {};
    for (const row of rows) {
      const cells = row.split(",");
      if (cells[proxy!] === "web" && cells[server!] !== "BACKEND") found[cells[server!]!] = cells[status!]!;
    }
    return found;
  };
  const haproxy: Haproxy = {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    states,
    output: () => output,
    async waitFor(server, state, timeoutMs = 15_000) {
      await eventually(async () => (await states())[server] === state || undefined, timeoutMs, `HAProxy to see ${server} ${state}\n${output}`);
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
  await eventually(() => states().then(() => true), 10_000, `HAProxy's stats page\n${output}`);
  return haproxy;
}
