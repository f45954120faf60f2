import type { Database } from "./client";

/**
 * Statements built once per database handle (issue 17): drizzle builds a query's text anew at
 * every run, which took a web process more CPU than sending it for the statements on the path
 * of every deployment and heartbeat. `build` prepares them (drizzle's `.prepare(name)`, with
 * `sql.placeholder` for what changes per run); they run on the handle's pool, never inside a
 * transaction, whose connection is another.
 */
export function preparedOnce<T>(build: (db: Database) => T): (db: Database) => T {
  const built = new WeakMap<Database, T>();
  return (db) => {
    let statements = built.get(db);
    if (statements === undefined) built.set(db, (statements = build(db)));
    return statements;
  };
}
