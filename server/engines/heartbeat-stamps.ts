import { sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { clusters } from "../db/schema";
import type { Logger } from "../logger";

/** How long a web process gathers its engines' heartbeat stamps into one write by default. */
const STAMP_FLUSH_MS = 1_000;

/**
 * The clusters' heartbeat stamps (`last_heartbeat_at`) of one web process, written together:
 * one UPDATE per flush for every engine whose stamp fell due, instead of one commit per engine.
 * A thousand engines stamping every 10 s (HEARTBEAT_STAMP_MS) were 100 commits a second, each
 * waiting for the disk, to say nothing new. A stamp is at most `flushMs` late: a cluster counts
 * as connected for 20 s after its last one. A stamp never moves back (another web process, or a
 * flush that failed and was retried, may have written a later one).
 */
export function createHeartbeatStamps(db: Database, logger: Logger, flushMs = STAMP_FLUSH_MS) {
  /** Per cluster, the latest heartbeat time waiting to be written. */
  let pending = new Map<string, Date>();
  let flushing: Promise<void> = Promise.resolve();

  async function write(batch: Map<string, Date>): Promise<void> {
    const ids = [...batch.keys()];
    const times = ids.map((id) => batch.get(id)!.toISOString());
    try {
      await db.execute(sql`
        update ${clusters} set last_heartbeat_at = stamp.at, updated_at = stamp.at
        from unnest(${sql.param(ids)}::uuid[], ${sql.param(times)}::timestamptz[]) as stamp(id, at)
        where ${clusters.id} = stamp.id and (${clusters.lastHeartbeatAt} is null or ${clusters.lastHeartbeatAt} < stamp.at)`);
    } catch (error) {
      logger.warn({ err: error, clusters: ids.length }, "could not write the engines' heartbeat stamps; retrying with the next flush");
      // Kept for the next flush, unless a later stamp of the same cluster came meanwhile.
      for (const [id, at] of batch) if (!pending.has(id)) pending.set(id, at);
    }
  }

  function flush(): Promise<void> {
    if (pending.size === 0) return flushing;
    const batch = pending;
    pending = new Map();
    // One write at a time: a slow one is not overtaken by the next.
    flushing = flushing.then(() => write(batch));
    return flushing;
  }

  const timer = setInterval(() => void flush(), flushMs);
  timer.unref();

  return {
    /** The cluster's engine sent a heartbeat at `at`: written with the next flush. */
    stamp(clusterId: string, at: Date): void {
      const known = pending.get(clusterId);
      if (!known || known < at) pending.set(clusterId, at);
    },
    /** Writes what is waiting and stops: the web process is closing. */
    async close(): Promise<void> {
      clearInterval(timer);
      await flush();
    },
  };
}
