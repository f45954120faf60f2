import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { readJson } from "../runtime/shared/files";
import { SerialQueues } from "../runtime/serial";
import { isSameProcessAlive, stopGroup } from "../runtime/local/processes";
import type { EdgeState } from "../protocol/edge";
import { childEnv, engineBaseEnv } from "../runtime/shared/processes-env";
import { routerFiles } from "./router-server";
import { routerHealth, routerStats, type RouterStats, type RoutesTable, wakeRequests } from "./routes";

/**
 * The engine's side of the router: find the router process of this home (its pid file and
 * control socket under <home>/router/), start it detached when nothing answers, and talk to
 * its control endpoints.
 */

const pidFileSchema = z.object({ pid: z.number(), startTime: z.number().nullable(), port: z.number(), host: z.string() });

/** `--import <tsx>` resolved from this file, so the router starts whatever the engine's cwd. */
export function tsxImportUrl(): string {
  return pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
}

function controlRequest(
  socketPath: string,
  method: string,
  urlPath: string,
  body?: unknown,
  timeoutMs = 5_000,
  signal?: AbortSignal,
): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      {
        socketPath,
        method,
        path: urlPath,
        timeout: timeoutMs,
        ...(signal ? { signal } : {}),
        headers: payload ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          try {
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString("utf8")) });
          } catch (error) {
            reject(error as Error);
          }
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`router control ${method} ${urlPath} timed out`)));
    req.on("error", reject);
    req.end(payload);
  });
}

export type RouterClient = {
  putRoutes(table: RoutesTable): Promise<void>;
  /** Replaces the custom domains, their challenges and certificates. */
  putEdge(state: EdgeState): Promise<void>;
  stats(): Promise<RouterStats>;
  /** Long poll: the sleeping services that got a request since the last call (empty after ~25 s without one). */
  wakes(signal?: AbortSignal): Promise<string[]>;
};

/**
 * What this process last handed the router of a home, and the queue its hand-overs go through
 * (one at a time per kind, in order). A router started again (router-watch.ts) reads back only
 * what its predecessor accepted (routes.json, edge.json): a table handed while no router
 * answered is in here only, and handAgain gives it the latest of both.
 */
type Handed = { routes?: RoutesTable; edge?: EdgeState; queue: SerialQueues };
const handedByHome = new Map<string, Handed>();

function handedTo(home: string): Handed {
  let handed = handedByHome.get(home);
  if (!handed) handedByHome.set(home, (handed = { queue: new SerialQueues() }));
  return handed;
}

async function sendRoutes(controlSocket: string, table: RoutesTable): Promise<void> {
  const { status, json } = await controlRequest(controlSocket, "PUT", "/routes", table);
  if (status !== 200) throw new Error(`router refused the routes table: ${JSON.stringify(json)}`);
}

async function sendEdge(controlSocket: string, state: EdgeState): Promise<void> {
  const { status, json } = await controlRequest(controlSocket, "PUT", "/edge", state);
  if (status !== 200) throw new Error(`router refused the custom domains: ${JSON.stringify(json)}`);
}

/**
 * Hands the router of this home the latest routes table and custom domains this process handed
 * any router of it (nothing when it handed none). Queued behind hand-overs under way, so an
 * older table never lands after a newer one.
 */
export async function handAgain(home: string): Promise<void> {
  const { controlSocket } = routerFiles(home);
  const handed = handedTo(home);
  await Promise.all([
    handed.queue.run("routes", async () => {
      if (handed.routes) await sendRoutes(controlSocket, handed.routes);
    }),
    handed.queue.run("edge", async () => {
      if (handed.edge) await sendEdge(controlSocket, handed.edge);
    }),
  ]);
}

export function routerClient(home: string): RouterClient {
  const { controlSocket } = routerFiles(home);
  const handed = handedTo(home);
  return {
    putRoutes(table) {
      handed.routes = table;
      return handed.queue.run("routes", () => sendRoutes(controlSocket, table));
    },
    putEdge(state) {
      handed.edge = state;
      return handed.queue.run("edge", () => sendEdge(controlSocket, state));
    },
    async stats() {
      const { json } = await controlRequest(controlSocket, "GET", "/stats");
      return routerStats.parse(json);
    },
    async wakes(signal) {
      const { json } = await controlRequest(controlSocket, "GET", "/wakes", undefined, 30_000, signal);
      return wakeRequests.parse(json).serviceIds;
    },
  };
}

async function answeringRouter(home: string): Promise<z.infer<typeof routerHealth> | null> {
  try {
    const { json } = await controlRequest(routerFiles(home).controlSocket, "GET", "/health", undefined, 1_000);
    return routerHealth.parse(json);
  } catch {
    return null;
  }
}

/**
 * Makes sure the router of this home runs on the wanted ports: reuses a live one, replaces one
 * listening elsewhere, starts one when none answers. Returns its pid. Without `httpsPort` the
 * router serves plain HTTP only.
 */
export async function ensureRouter(options: {
  home: string;
  port: number;
  host: string;
  httpsPort?: number;
  /** How long a sleeping service's requests wait for its wake; when a browser gets the waiting page (router defaults otherwise). */
  wakeTimeoutMs?: number;
  wakePageAfterMs?: number;
  /** Connections the router holds open at once (connection-limit.ts; its default otherwise). */
  maxConnections?: number;
}): Promise<number> {
  const files = routerFiles(options.home);
  // Linux limits unix socket paths to 107 bytes; say so instead of failing with EINVAL later.
  if (Buffer.byteLength(files.controlSocket) > 107)
    throw new Error(`engine home ${options.home} is too long for the router's control socket (${files.controlSocket}); use a shorter path`);
  fs.mkdirSync(files.dir, { recursive: true });
  const recorded = await readJson(files.pidFile, pidFileSchema).catch(() => null);
  const recordedAlive = recorded !== null && recorded.startTime !== null && isSameProcessAlive(recorded.pid, recorded.startTime);
  if (recordedAlive) {
    const health = await answeringRouter(options.home);
    if (
      health &&
      health.pid === recorded.pid &&
      health.port === options.port &&
      health.host === options.host &&
      health.httpsPort === (options.httpsPort ?? null) &&
      (options.wakeTimeoutMs === undefined || health.wakeTimeoutMs === options.wakeTimeoutMs) &&
      (options.wakePageAfterMs === undefined || health.wakePageAfterMs === options.wakePageAfterMs) &&
      (options.maxConnections === undefined || health.maxConnections === options.maxConnections)
    )
      return recorded.pid;
    await stopGroup(recorded.pid, recorded.startTime, 5_000);
  }

  fs.rmSync(files.pidFile, { force: true });
  const log = fs.openSync(files.logFile, "a", 0o600);
  const main = fileURLToPath(new URL("./main.ts", import.meta.url));
  const args = ["--import", tsxImportUrl(), main, "--home", options.home, "--port", String(options.port), "--host", options.host];
  if (options.httpsPort) args.push("--https-port", String(options.httpsPort));
  if (options.wakeTimeoutMs !== undefined) args.push("--wake-timeout-ms", String(options.wakeTimeoutMs));
  if (options.wakePageAfterMs !== undefined) args.push("--wake-page-after-ms", String(options.wakePageAfterMs));
  if (options.maxConnections !== undefined) args.push("--max-connections", String(options.maxConnections));
  const child = spawn(process.execPath, args, {
    cwd: files.dir,
    detached: true,
    stdio: ["ignore", log, log],
    env: childEnv({ ...engineBaseEnv(), NODE_ENV: "production" }),
  });
  fs.closeSync(log);
  child.unref();
  let exited: number | null | undefined;
  child.once("exit", (code) => {
    exited = code;
  });
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const health = await answeringRouter(options.home);
    if (health && health.pid === child.pid) return health.pid;
    if (exited !== undefined) break;
    await sleep(100);
  }
  const tail = fs.readFileSync(files.logFile, "utf8").split("\n").slice(-15).join("\n");
  throw new Error(`the router did not start on ${options.host}:${options.port} (exit ${String(exited)}); ${files.logFile}:\n${tail}`);
}
