import { sql } from "drizzle-orm";
import type { PgPreparedQuery, PreparedQueryConfig } from "drizzle-orm/pg-core";
import type { Executor } from "./client";

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each statement keeps its own result type
type Statement = PgPreparedQuery<PreparedQueryConfig & { execute: any }>;

/**
 * Statements built once per process (issue 17): drizzle builds a query's text anew at every run,
 * which took the control plane more CPU than sending it for the statements on the path of every
 * deployment, event batch and heartbeat. `build` prepares them (drizzle's `.prepare(name)`, with
 * `sql.placeholder` for what changes per run); each run goes to the handle it is given: the pool,
 * or an open transaction's connection.
 *
 * A prepared statement of drizzle's runs on the connection of the session it was built on, kept
 * in its `client` field; it is rebound here by an object whose prototype is the statement, with
 * a `client` of its own (server/db/prepared.test.ts fails if a transaction's run left it).
 *
 * What drizzle computes while it builds is computed once: an update's `$onUpdate` (updated_at)
 * and a `$defaultFn` must be placeholders, or every run would keep the value of the first build.
 */
export function preparedOnce<T extends Record<string, Statement>>(build: (db: Executor) => T): (handle: Executor) => T {
  let built: T | undefined;
  // Per connection: a pool, or a pooled client (a bounded set, which one transaction after another reuses).
  const bound = new WeakMap<object, T>();
  return (handle) => {
    built ??= build(handle);
    const client = connectionOf(handle);
    let statements = bound.get(client);
    if (statements === undefined) {
      const rebound = Object.entries(built).map(([name, statement]) => [name, Object.create(statement, { client: { value: client } }) as Statement]);
      bound.set(client, (statements = Object.fromEntries(rebound) as T));
    }
    return statements;
  };
}

/** The driver connection a handle's statements run on: a pg pool, or the client of a transaction. */
function connectionOf(handle: Executor): object {
  const client = (handle as unknown as { session?: { client?: unknown } }).session?.client;
  if (typeof client !== "object" || client === null)
    throw new Error("a prepared statement needs a node-postgres handle (connectDatabase's, or its transaction)");
  return client;
}

/*
 * Values a run gives that a column's encoder would not take: drizzle applies it to a
 * placeholder's value, null included (a timestamp's, a JSON's, an array's fails or stores JSON's
 * null). These are cast by PostgreSQL instead; the run gives what the helpers below make.
 */

/** A timestamp, given as an ISO string (timeValue) or null. */
export const timeParam = (name: string) => sql<Date>`${sql.placeholder(name)}::timestamptz`;
/** A JSON value, given as its text (jsonValue): SQL's NULL for null. */
export const jsonParam = <T>(name: string) => sql<T>`${sql.placeholder(name)}::jsonb`;
/** A list of uuids, given as an array or null. */
export const uuidsParam = (name: string) => sql<string[]>`${sql.placeholder(name)}::uuid[]`;

export const timeValue = (time: Date | null | undefined) => time?.toISOString() ?? null;
export const jsonValue = (value: unknown) => (value === null || value === undefined ? null : JSON.stringify(value));
