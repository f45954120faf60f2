import pg, { type QueryConfig } from "pg";
import type { Database } from "../db/client";
import { UNFOLLOWED_REASON } from "./followed-repositories";

export type DeliveryRow = {
  organizationId: string;
  connectionId: string;
  deliveryId: string;
  event: string;
  repository: string | null;
  headers: Record<string, string>;
  /** The request body, valid UTF-8 JSON (the intake parsed it). */
  body: Buffer;
  /** PENDING for the worker; IGNORED (an event Slipway does not act on) and PROCESSED (a repository no service follows) are settled as stored. */
  status: "PENDING" | "IGNORED" | "PROCESSED";
  /**
   * The connection's sealed webhook secret as the intake read it (and verified the signature
   * with): the row is stored only while it is still the connection's.
   */
  sealedSecret: string;
};

/**
 * `stale`: not stored, because the connection's secret was rotated (or the connection deleted)
 * since the intake read it: the intake verifies the delivery again against the current one.
 */
export type Stored = { outcome: "stored"; id: string } | { outcome: "duplicate" } | { outcome: "stale" };

/** The task and job key every batch enqueues: one job processes everything pending, in order. */
export const PROCESS_JOB_KEY = "process_webhooks";
export const WEBHOOK_QUEUE = "webhooks";
/**
 * How long the job waits before it runs: batches arriving meanwhile join it (its run_at is
 * preserved), so under load one run processes hundreds of deliveries instead of one run per
 * batch. Small next to a deployment, and the 202 never waits for it.
 */
export const PROCESS_DELAY_MS = 200;

/**
 * One statement per batch, so it is atomic on its own (one round trip, no BEGIN/COMMIT): the
 * multi-row insert (duplicates skipped by the unique (connection, delivery id) index), and, when
 * a row waits for processing, the process_webhooks job. graphile-worker's job_key coalesces the
 * jobs of many batches into one; `preserve_run_at` keeps a waiting job's time (PROCESS_DELAY_MS
 * after the first batch), and a job that is already running gets a successor, so a delivery
 * stored while it runs is not missed (https://worker.graphile.org/docs/job-key).
 *
 * The intake caches connections with their secrets (a rotation reaches the other web processes
 * by NOTIFY, a moment later): rows are inserted only for the connections whose sealed secret is
 * still the one the intake verified with, so a delivery signed with a secret rotated away is
 * never stored once the rotation committed, whatever a process's cache holds. The other rows'
 * connections come back as stale (a row with a null id). One index lookup per connection in
 * the batch, in the same statement.
 *
 * A named (prepared) statement: each pooled connection parses and plans it once instead of once
 * per batch. The headers and payloads of all rows travel as one binary bytea parameter cut by
 * byte offsets (each row: its headers' JSON, then its body): a text[] or jsonb[] literal would
 * escape every quote of every JSON document, in Node and again in Postgres.
 */
const INSERT_BATCH = {
  name: "webhook_deliveries_insert_batch_v3",
  text: `
with input as (
  select * from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::int[], $7::int[], $8::int[], $9::webhook_delivery_status[], $11::int[])
    with ordinality as t(organization_id, connection_id, delivery_id, event, repository, headers_length, body_offset, body_length, status, secret, ord)
), secrets as (
  select * from unnest($12::uuid[], $13::text[]) with ordinality as s(connection_id, sealed, secret)
), verified as (
  select s.secret from secrets s join git_connections c on c.id = s.connection_id and c.encrypted_secret = s.sealed
), ins as (
  insert into webhook_deliveries (organization_id, connection_id, delivery_id, event, repository, headers, payload, status, outcome, processed_at)
  select organization_id, connection_id, delivery_id, event, repository,
    convert_from(substring($10::bytea from body_offset - headers_length for headers_length), 'UTF8')::jsonb,
    convert_from(substring($10::bytea from body_offset for body_length), 'UTF8'),
    status, case when status = 'PROCESSED' then jsonb_build_object('reason', '${UNFOLLOWED_REASON}', 'repository', repository) end,
    case when status <> 'PENDING' then now() end
  from input where secret in (select secret from verified) order by ord
  on conflict (connection_id, delivery_id) do nothing
  returning id, connection_id, delivery_id, status
), job as (
  select graphile_worker.add_job('${PROCESS_JOB_KEY}', '{}'::json, queue_name => '${WEBHOOK_QUEUE}', run_at => now() + interval '${PROCESS_DELAY_MS} milliseconds',
    job_key => '${PROCESS_JOB_KEY}', job_key_mode => 'preserve_run_at')
  where exists (select 1 from ins where status = 'PENDING')
)
select id, connection_id, delivery_id, (select count(*) from job) as jobs, null as stale_sealed from ins
union all
select null, connection_id, null, 0, sealed from secrets where secret not in (select secret from verified)`,
};

function insertBatch(rows: DeliveryRow[]): QueryConfig {
  const parts: Buffer[] = [];
  const headerLengths: number[] = [];
  const bodyOffsets: number[] = [];
  // substring() counts from 1.
  let offset = 1;
  for (const row of rows) {
    const headers = Buffer.from(JSON.stringify(row.headers));
    parts.push(headers, row.body);
    headerLengths.push(headers.length);
    offset += headers.length;
    bodyOffsets.push(offset);
    offset += row.body.length;
  }
  const column = <T>(pick: (row: DeliveryRow) => T) => rows.map(pick);
  // The batch's connections with the sealed secret each row was verified with, each pair once
  // (a batch usually holds one or a few), numbered from 1 as `with ordinality` does.
  const secrets = new Map<string, { connectionId: string; sealed: string; number: number }>();
  const secretOf = (row: DeliveryRow) => {
    const key = `${row.connectionId}\u0000${row.sealedSecret}`;
    let secret = secrets.get(key);
    if (!secret) secrets.set(key, (secret = { connectionId: row.connectionId, sealed: row.sealedSecret, number: secrets.size + 1 }));
    return secret.number;
  };
  return {
    ...INSERT_BATCH,
    values: [
      column((r) => r.organizationId),
      column((r) => r.connectionId),
      column((r) => r.deliveryId),
      column((r) => r.event),
      column((r) => r.repository),
      headerLengths,
      bodyOffsets,
      column((r) => r.body.length),
      column((r) => r.status),
      // A Buffer parameter is sent in binary: no hex encoding on either side.
      Buffer.concat(parts, offset - 1),
      column(secretOf),
      [...secrets.values()].map((secret) => secret.connectionId),
      [...secrets.values()].map((secret) => secret.sealed),
    ],
  };
}

/** The pg pool behind a drizzle handle: drizzle cannot name a statement, pg can. */
function poolOf(db: Database): pg.Pool {
  const client = (db as Database & { $client?: unknown }).$client;
  if (!(client instanceof pg.Pool)) throw new Error("the webhook batcher needs a database handle made by connectDatabase (a pg pool)");
  return client;
}

type Waiting = { row: DeliveryRow; resolve: (stored: Stored) => void; reject: (error: unknown) => void; duplicates: ((stored: Stored) => void)[] };

export type BatcherOptions = { maxRows?: number; maxInFlight?: number };

/**
 * Group commit for webhook deliveries: rows from concurrent requests are written together, one
 * statement per batch, and every caller's promise settles only after its batch committed, so a
 * 202 always means durable.
 *
 * A batch is written at the end of the event-loop turn its first row arrived in, so a lone
 * delivery waits for nothing. While `maxInFlight` batches are being written, rows collect
 * instead: under load batches grow with the time a write takes rather than queueing round trips.
 * No timer: arrivals come in bursts (the answers of one batch release the next requests of its
 * senders), and a fixed wait kept each burst waiting after it was complete.
 */
export function createDeliveryBatcher(db: Database, options: BatcherOptions = {}) {
  const maxRows = options.maxRows ?? 500;
  // Measured on two cores (npm run bench -- webhooks, 50 senders): two batches in flight beat one
  // (no overlap) and three (smaller batches). Against the former 2 ms timer: as fast or faster
  // under load (the gain is within the host's noise), and nothing waits when the load is light.
  const maxInFlight = options.maxInFlight ?? 2;
  const pool = poolOf(db);
  let pending = new Map<string, Waiting>();
  let scheduled: NodeJS.Immediate | null = null;
  let inFlight = 0;
  const idle: (() => void)[] = [];
  const stats = { batches: 0, rows: 0, largestBatch: 0, mostInFlight: 0, writeMs: 0 };

  const keyOf = (row: DeliveryRow) => `${row.connectionId}\u0000${row.deliveryId}`;

  function schedule() {
    if (inFlight < maxInFlight) scheduled ??= setImmediate(flush);
  }

  /**
   * Up to maxRows of the collected rows, oldest first. Usually all of them, with a fresh map for
   * the next: deleting each batch's entries from one long-lived map measured worse (the intake's
   * p99 23 ms against 14 ms).
   */
  function takeBatch(): Waiting[] {
    const rows = [...pending.values()];
    if (rows.length <= maxRows) {
      pending = new Map();
      return rows;
    }
    const batch = rows.slice(0, maxRows);
    for (const waiting of batch) pending.delete(keyOf(waiting.row));
    return batch;
  }

  function flush() {
    if (scheduled) clearImmediate(scheduled);
    scheduled = null;
    while (pending.size > 0 && inFlight < maxInFlight) {
      const batch = takeBatch();
      stats.mostInFlight = Math.max(stats.mostInFlight, ++inFlight);
      void write(batch).finally(() => {
        inFlight--;
        if (pending.size > 0) schedule();
        else if (inFlight === 0) for (const done of idle.splice(0)) done();
      });
    }
  }

  async function write(batch: Waiting[]) {
    stats.batches++;
    stats.rows += batch.length;
    stats.largestBatch = Math.max(stats.largestBatch, batch.length);
    const started = performance.now();
    try {
      const result = await pool.query<{ id: string | null; connection_id: string; delivery_id: string | null; stale_sealed: string | null }>(
        insertBatch(batch.map((w) => w.row)),
      );
      const inserted = new Map<string, string>();
      const stale = new Set<string>();
      for (const r of result.rows) {
        if (r.stale_sealed !== null) stale.add(`${r.connection_id}\u0000${r.stale_sealed}`);
        else inserted.set(`${r.connection_id}\u0000${r.delivery_id}`, r.id!);
      }
      for (const waiting of batch) {
        const id = inserted.get(keyOf(waiting.row));
        const outcome: Stored = id
          ? { outcome: "stored", id }
          : stale.has(`${waiting.row.connectionId}\u0000${waiting.row.sealedSecret}`)
            ? { outcome: "stale" }
            : { outcome: "duplicate" };
        waiting.resolve(outcome);
        // A copy is a replay of what its first was: stored or known (a duplicate), or not stored at all.
        for (const duplicate of waiting.duplicates) duplicate(outcome.outcome === "stale" ? outcome : { outcome: "duplicate" });
      }
    } catch (error) {
      for (const waiting of batch) waiting.reject(error);
    } finally {
      stats.writeMs += performance.now() - started;
    }
  }

  return {
    stats,
    /** Resolves once the row is committed (or found to be a replay of a stored delivery). */
    add(row: DeliveryRow): Promise<Stored> {
      return new Promise<Stored>((resolve, reject) => {
        const key = keyOf(row);
        const same = pending.get(key);
        // The same delivery twice in one batch: the first is stored, the second is its replay.
        if (same) same.duplicates.push(resolve);
        else pending.set(key, { row, resolve, reject, duplicates: [] });
        schedule();
      });
    },
    /** Waits until every collected row is written. */
    async drain(): Promise<void> {
      if (pending.size === 0 && inFlight === 0) return;
      flush();
      await new Promise<void>((resolve) => idle.push(resolve));
    },
  };
}
