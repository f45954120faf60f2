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
