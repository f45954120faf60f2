import type { IncomingMessage, ServerResponse } from "node:http";
import { sql } from "drizzle-orm";
import type { Database } from "./db/client";

/**
 * Liveness and readiness, the same two paths on every control-plane process (web on its port,
 * the worker on SLIPWAY_WORKER_HEALTH_PORT), for a load balancer, systemd or Kubernetes probes:
 *
 * - `GET /api/health/live`: 200 while the process runs its event loop. Restart it when this fails.
 * - `GET /api/health/ready`: 200 while it can do its work (the database answers, it is not
 *   stopping); 503 otherwise, with the reason. A load balancer sends it traffic only then.
 *
 * `/api/health` is the readiness check under its first name (kept: `npm start` and scripts use it).
 */
export const HEALTH_PATHS = { live: "/api/health/live", ready: "/api/health/ready", legacy: "/api/health" } as const;

/** `stopping`: told to stop (a SIGTERM's drain); `runner`: the worker's job runner is not running (ended, or being started anew). */
export type Readiness = { ok: boolean; database: "up" | "down"; stopping?: true; runner?: "down" };

const DATABASE_TIMEOUT_MS = 2_000;

/**
 * Whether the database answers a trivial query within two seconds. Readiness says "down" while
 * it does not: a process that answers 200 without a database would keep a load balancer
 * sending it requests it can only fail.
 */
export async function databaseAnswers(db: Database, timeoutMs = DATABASE_TIMEOUT_MS): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(resolve, timeoutMs, false);
  });
  const query = db.execute(sql`select 1`).then(
    () => true,
    () => false,
  );
  const answered = await Promise.race([query, timeout]);
  clearTimeout(timer);
  return answered;
}

/**
 * The readiness of a process that needs its database and can be told it is stopping; a worker
 * also needs its job runner (`runnerUp`).
 */
export async function readiness(db: Database, stopping: () => boolean, runnerUp: () => boolean = () => true): Promise<Readiness> {
  const database = (await databaseAnswers(db)) ? "up" : "down";
  if (stopping()) return { ok: false, database, stopping: true };
  if (!runnerUp()) return { ok: false, database, runner: "down" };
  return { ok: database === "up", database };
}

/**
 * Answers the health paths; returns false for any other request. `ready` is asked on each
 * readiness probe (never cached: a load balancer probes every second or so, one `select 1`).
 */
export async function answerHealth(req: IncomingMessage, res: ServerResponse, ready: () => Promise<Readiness>): Promise<boolean> {
  const path = (req.url ?? "/").split("?")[0];
  if (path === HEALTH_PATHS.live) {
    res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" }).end(JSON.stringify({ ok: true }));
    return true;
  }
  if (path === HEALTH_PATHS.ready || path === HEALTH_PATHS.legacy) {
    const report = await ready();
    res.writeHead(report.ok ? 200 : 503, { "content-type": "application/json", "cache-control": "no-store" }).end(JSON.stringify(report));
    return true;
  }
  return false;
}
