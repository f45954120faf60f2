import { EventEmitter } from "node:events";
import type { WorkerEvents } from "graphile-worker";
import pg from "pg";
import { connectionSettings, guardPoolErrors, type ConnectionSettings } from "../server/db/client";
import { workerLivenessLock } from "../server/jobs/worker-locks";
import type { Logger } from "../server/logger";

/**
 * Makes this process's graphile-worker workers visibly alive: for each worker id, a session
 * advisory lock held on a connection of its own. PostgreSQL releases it when the process dies,
 * however it dies, so the lock reconciler (server/jobs/worker-locks.ts) can tell the jobs and
 * queues of a killed worker, which graphile-worker would keep locked for four hours, from those
 * of a live one. Locks are taken again when the connection comes back after a database restart.
 *
 * The connection has the control plane's bounds (`settings`, server/db/client.ts's by default):
 * one opened to a database gone silent would otherwise wait for ever, and with it every lock not
 * yet taken, leaving those workers' jobs to the reconciler as a dead worker's.
 */
export function holdWorkerLiveness(connectionString: string, logger: Logger, settings?: ConnectionSettings) {
  const events: WorkerEvents = new EventEmitter();
  const workerIds = new Set<string>();
  const pool = new pg.Pool({ ...connectionSettings(settings), connectionString, max: 1 });
  guardPoolErrors(pool, (error) => logger.warn({ err: error }, "the worker's liveness connection failed"));
  let client: pg.PoolClient | null = null;
  /** The ids whose lock `client` holds: a new connection holds none. */
  const held = new Set<string>();
  let closed = false;
  let holding: Promise<void> = Promise.resolve();

  /** Takes the lock of every worker id not yet held, on one connection, opening it (again) if need be. */
  const holdAll = () => {
    holding = holding
      .then(async () => {
        if (closed) return;
        if (!client) {
          const fresh = await pool.connect();
          fresh.once("end", () => {
            if (client !== fresh) return;
            client = null;
            if (!closed) setTimeout(holdAll, 1_000).unref();
          });
          client = fresh;
          held.clear();
        }
        for (const workerId of workerIds) {
          if (held.has(workerId)) continue;
          await client.query("select pg_advisory_lock(hashtextextended($1, 0))", [workerLivenessLock(workerId)]);
          held.add(workerId);
        }
      })
      .catch((error: unknown) => {
        logger.warn({ err: error }, "could not take the workers' liveness locks; retrying");
        client = null;
        if (!closed) setTimeout(holdAll, 1_000).unref();
      });
  };

  events.on("worker:create", ({ worker }) => {
    workerIds.add(worker.workerId);
    holdAll();
  });

  return {
    /** Pass to graphile-worker's `run({ events })`, so that no worker is created unseen. */
    events,
    /** Releases the locks; idempotent. */
    async close() {
      if (closed) return;
      closed = true;
      await holding;
      client?.release();
      client = null;
      await pool.end();
    },
  };
}
