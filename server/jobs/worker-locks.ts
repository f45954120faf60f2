import { sql } from "drizzle-orm";
import type { Database } from "../db/client";

/**
 * graphile-worker keeps the jobs and named queues of a worker that died without finishing them
 * (SIGKILL, the OOM killer, a lost host) locked for four hours: the webhook queue, for one, would
 * wait that long. Every worker process holds a session advisory lock per worker id
 * (worker/liveness.ts), which PostgreSQL releases with the process. A lock that can be taken
 * belongs to a dead worker, whose jobs and queues are then unlocked for live workers to run.
 */

const LOCK_PREFIX = "slipway-worker:";

/** The name whose hash (`hashtextextended(name, 0)`) is the advisory lock a live worker holds. */
export function workerLivenessLock(workerId: string): string {
  return `${LOCK_PREFIX}${workerId}`;
}

/** Unlocks what dead workers held; returns their ids. Runs in one transaction: the probing locks end with it. */
export async function unlockDeadWorkers(db: Database): Promise<string[]> {
  return db.transaction(async (tx) => {
    const { rows } = await tx.execute<{ worker_id: string }>(sql`
      select worker_id from (
        select locked_by as worker_id from graphile_worker._private_jobs where locked_by is not null
        union
        select locked_by from graphile_worker._private_job_queues where locked_by is not null
      ) held
      where pg_try_advisory_xact_lock(hashtextextended(${LOCK_PREFIX} || worker_id, 0))`);
    const dead = rows.map((row) => row.worker_id);
    const ids = sql.join(
      dead.map((id) => sql`${id}`),
      sql`, `,
    );
    if (dead.length > 0) await tx.execute(sql`select graphile_worker.force_unlock_workers(array[${ids}]::text[])`);
    return dead;
  });
}
