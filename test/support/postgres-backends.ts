import type pg from "pg";

/**
 * Ends the connections to the current database (not the caller's own) whose last statement
 * matches `pattern` (SQL LIKE, case-sensitive), as a database restart ends them; returns how many.
 */
export async function endConnectionsRunning(db: pg.Pool | pg.ClientBase, pattern: string): Promise<number> {
  const { rows } = await db.query(
    "select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and query like $1",
    [pattern],
  );
  return rows.length;
}
