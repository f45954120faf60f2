import { drizzle, type NodePgDatabase } from "drizzle-orm/node-postgres";
import pg from "pg";
import { nameStatements } from "./named-statements";
import * as schema from "./schema";

export type Database = NodePgDatabase<typeof schema>;
/** A database handle or an open transaction: domain functions accept either. */
export type Executor = Database | Parameters<Parameters<Database["transaction"]>[0]>[0];

export type DatabaseHandle = { db: Database; pool: pg.Pool; close: () => Promise<void> };

export function connectDatabase(connectionString: string, options: { max?: number; onError?: (error: Error) => void } = {}): DatabaseHandle {
  const pool = new pg.Pool({ connectionString, max: options.max ?? 10 });
  guardPoolErrors(pool, options.onError ?? (() => {}));
  nameStatements(pool);
  const db = drizzle(pool, { schema, casing: undefined });
  return { db, pool, close: () => pool.end() };
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
