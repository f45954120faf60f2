import type net from "node:net";
import { drizzle, type NodePgDatabase } from "drizzle-orm/node-postgres";
import pg from "pg";
import { nameStatements } from "./named-statements";
import * as schema from "./schema";

export type Database = NodePgDatabase<typeof schema>;
/** A database handle or an open transaction: domain functions accept either. */
export type Executor = Database | Parameters<Parameters<Database["transaction"]>[0]>[0];

export type DatabaseHandle = { db: Database; pool: pg.Pool; close: () => Promise<void> };

/** How long opening a connection, or waiting for one of a full pool, may take before the caller is told the database is unavailable. */
export const CONNECT_TIMEOUT_MS = 5_000;
/**
 * How long a query may wait for its answer before it fails (pg's client-side `query_timeout`;
 * the connection is then dropped from the pool). A database that vanished without closing its
 * connections (a blackholed failover, a frozen VM, a partition) never answers, and the kernel
 * gives up on such a connection only after about 15 minutes of retransmissions; a server-side
 * `statement_timeout` cannot help, the server being the one that is gone. A minute is far above
 * any query of a request or a job (retention deletes batches that take milliseconds), and lock
 * waits count: a transaction holding a row that long is itself the fault. Migrations may run
 * longer (an index on a large table) and pass 0 (none).
 */
export const QUERY_TIMEOUT_MS = 60_000;
/**
 * TCP keepalive after this long idle: a connection whose peer is gone is closed by the kernel
 * instead of lingering, and middleboxes (NAT, cloud load balancers) that drop idle flows after a
 * few minutes keep this one. Node sets only the idle delay; the probes' interval and count are
 * the host's (`net.ipv4.tcp_keepalive_intvl`, `tcp_keepalive_probes`).
 */
export const KEEPALIVE_INITIAL_DELAY_MS = 10_000;

export type ConnectionSettings = { connectTimeoutMs?: number; queryTimeoutMs?: number };

/**
 * What every pool and client of the control plane connects with: bounded connection and query
 * waits, TCP keepalive. For `new pg.Pool(...)` and `new pg.Client(...)` made outside
 * {@link connectDatabase}.
 */
export function connectionSettings(settings: ConnectionSettings = {}): pg.PoolConfig {
  const connectTimeoutMs = settings.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
  const queryTimeoutMs = settings.queryTimeoutMs ?? QUERY_TIMEOUT_MS;
  for (const [name, value] of Object.entries({ connectTimeoutMs, queryTimeoutMs })) {
    if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a whole number of milliseconds, 0 or more (got ${value})`);
  }
  return {
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_INITIAL_DELAY_MS,
    // 0 means no limit to pg, as it does here.
    connectionTimeoutMillis: connectTimeoutMs,
    query_timeout: queryTimeoutMs || undefined,
  };
}

export function connectDatabase(
  connectionString: string,
  options: ConnectionSettings & { max?: number; onError?: (error: Error) => void } = {},
): DatabaseHandle {
  const pool = new pg.Pool({ ...connectionSettings(options), connectionString, max: options.max ?? 10 });
  guardPoolErrors(pool, options.onError ?? (() => {}));
  nameStatements(pool);
  const db = drizzle(pool, { schema, casing: undefined });
  return { db, pool, close: () => pool.end() };
}

/**
 * Cuts a client's connection at once. With an `error`, as a network error would: its queries
 * fail with it, it emits `error` and `end`, and whoever holds it reconnects. Without, after its
 * `end()`: that one waits for the server to close its side, which a vanished server never does.
 * (pg-pool cuts a connection that does not open in time the same way.)
 */
export function destroyConnection(client: pg.Client, error?: Error): void {
  (client.connection as unknown as { stream?: net.Socket }).stream?.destroy(error);
}

/**
 * A connection can be ended by the server at any time (a restart, `pg_terminate_backend`: 57P01).
 * pg reports it as an `error` event on the pool while the client is idle, and on the client
 * itself while it is checked out; an event without a listener crashes the process. So both get
 * one: the query in flight fails with the error, the pool replaces the connection, and a
 * database restart costs the requests it interrupts instead of the process.
 *
 * A client held for long (the socket.io adapter's LISTEN connection) that ends is never given
 * back by its holder, and `pool.end()` would wait for it forever: once the holder had its turn
 * to release it (a query's own release comes on the next tick), it is released here, with the
 * error, which removes it from the pool. Releasing a client twice throws: that is the common
 * case, where its query already gave it back.
 */
export function guardPoolErrors(pool: pg.Pool, onError: (error: Error) => void): void {
  // An idle connection's error reaches both its client's listener and, through pg-pool, the pool's.
  const reported = new WeakSet<Error>();
  const report = (error: Error) => {
    hideClient(error);
    if (reported.has(error)) return;
    reported.add(error);
    onError(error);
  };
  pool.on("error", report);
  pool.on("connect", (client) => {
    client.on("error", report);
    onQueryTimeout(client, (error) => {
      // Its holder was told with the query's failure; the client's own error event that follows is the same error.
      reported.add(error);
      destroyConnection(client, error);
    });
    client.once("end", () =>
      setImmediate(() => {
        try {
          (client as pg.PoolClient).release(new Error("the connection ended"));
        } catch {
          // Already given back.
        }
      }),
    );
  });
}

/** pg's error for a query not answered within `query_timeout` (node_modules/pg/lib/client.js, `Client.query`). */
const QUERY_TIMEOUT_MESSAGE = "Query read timeout";

type QueryCallback = (error: unknown, result: unknown) => void;

/**
 * Calls `onTimeout` when one of `client`'s queries is not answered within `query_timeout`. pg
 * fails that query but keeps the connection as it was: still waiting for that answer, so every
 * query sent after waits behind it for the full timeout (a transaction's ROLLBACK first), and
 * queryable, so a holder that gives it back without an error (drizzle's `db.transaction`,
 * graphile-worker's `withPgClient`) returns it to the pool, where the next request to get it
 * waits in turn. Only `pool.query` gives it back with the error, which removes it.
 *
 * Watched: the promise and callback forms, which the ORM, graphile-worker and pg-pool use.
 * Not watched: a submittable (a `pg.Query`, a cursor, a stream), whose errors are its own events.
 */
function onQueryTimeout(client: pg.Client, onTimeout: (error: Error) => void): void {
  const check = (error: unknown) => {
    if (error instanceof Error && error.message === QUERY_TIMEOUT_MESSAGE) onTimeout(error);
  };
  const watched =
    (callback: QueryCallback): QueryCallback =>
    (error, result) => {
      check(error);
      callback(error, result);
    };
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  client.query = ((config: unknown, values?: unknown, callback?: unknown) => {
    if (typeof callback === "function") return query(config, values, watched(callback as QueryCallback));
    if (typeof values === "function") return query(config, watched(values as QueryCallback));
    if (isPlainConfigWithCallback(config)) return query({ ...config, callback: watched(config.callback) }, values);
    const result = query(config, values);
    // A branch of its own: the caller's handling of the rejection is untouched.
    if (isPromiseLike(result)) result.then(undefined, check);
    return result;
  }) as typeof client.query;
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return !!value && typeof (value as { then?: unknown }).then === "function";
}

function isPlainConfigWithCallback(config: unknown): config is { callback: QueryCallback } {
  if (!config || typeof config !== "object") return false;
  const { callback, submit } = config as { callback?: unknown; submit?: unknown };
  return typeof callback === "function" && typeof submit !== "function";
}

/**
 * pg-pool attaches the whole pg Client to an idle connection's error (`err.client`), and a
 * logger's error serializer writes every enumerable property: 9 to 16 KB for each connection
 * the server ended. The client stays on the error, out of what is serialized; the message, code
 * and severity stay as they are.
 */
function hideClient(error: Error): void {
  if (Object.prototype.propertyIsEnumerable.call(error, "client")) Object.defineProperty(error, "client", { enumerable: false });
}

/** The same server's URL for another database (its socket, credentials and parameters kept). */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}
