import { sql, type Placeholder } from "drizzle-orm";
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
 * in its `client` field, and logs to that session's logger; it is rebound here by an object whose
 * prototype is the statement, with the handle's own (server/db/prepared.test.ts fails if a
 * transaction's run left its connection).
 *
 * What drizzle computes while it builds is computed once: an update's `$onUpdate` (updated_at)
 * and a `$defaultFn` must be placeholders, or every run would keep the value of the first build.
 */
export function preparedOnce<T extends Record<string, Statement>>(build: (db: Executor) => T): (handle: Executor) => T {
  let built: T | undefined;
  // Per session: a database handle's (its pool), or a transaction's (a pooled client).
  const bound = new WeakMap<object, T>();
  return (handle) => {
    built ??= build(handle);
    const session = sessionOf(handle);
    let statements = bound.get(session);
    if (statements === undefined) {
      const own = { client: { value: session.client }, logger: { value: session.logger } };
      const rebound = Object.entries(built).map(([name, statement]) => [name, Object.create(statement, own) as Statement]);
      bound.set(session, (statements = Object.fromEntries(rebound) as T));
    }
    return statements;
  };
}

type Session = { client: object; logger: unknown };

/** What a handle's statements run with: a pg pool or a transaction's client, and the handle's logger. */
function sessionOf(handle: Executor): Session {
  const session = (handle as unknown as { session?: Partial<Session> }).session;
  if (typeof session?.client !== "object" || session.client === null)
    throw new Error("a prepared statement needs a node-postgres handle (connectDatabase's, or its transaction)");
  return session as Session;
}

/** A placeholder per name, named `<name><suffix>` (a suffix tells a multi-row insert's rows apart). */
export function placeholders<K extends string>(names: readonly K[], suffix = ""): Record<K, Placeholder> {
  return Object.fromEntries(names.map((name) => [name, sql.placeholder(`${name}${suffix}`)])) as Record<K, Placeholder>;
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
