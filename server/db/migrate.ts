import path from "node:path";
import { fileURLToPath } from "node:url";
import { readMigrationFiles } from "drizzle-orm/migrator";
import { drizzle } from "drizzle-orm/node-postgres";
import { PgDialect } from "drizzle-orm/pg-core";
import { Logger, runMigrations } from "graphile-worker";
import { AppError } from "../errors";
import { connectDatabase } from "./client";

// graphile-worker logs each migration step; the boot reports success or failure once.
const silentLogger = new Logger(() => () => {});

const migrationsFolder = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../drizzle");

/**
 * Brings the database to the current schema: Slipway's own migrations (drizzle/, committed SQL)
 * and graphile-worker's. A failure stops the boot with the migration's error as the cause.
 */
export async function migrateDatabase(connectionString: string): Promise<void> {
  // No query timeout: a migration may take long (an index built on a large table).
  const handle = connectDatabase(connectionString, { max: 2, queryTimeoutMs: 0 });
  try {
    await applyMigrations(handle);
    await runMigrations({ connectionString, logger: silentLogger });
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new AppError("UNAVAILABLE", `Database migration failed: ${detail}`, { cause: error });
  } finally {
    await handle.close();
  }
}

/**
 * drizzle's `migrate()`, but with each pending migration in a transaction of its own. drizzle
 * applies them all in one, and PostgreSQL before 18 refuses an enum value used in the transaction
 * that added it ("unsafe use of new value"): a fresh database on PostgreSQL 15 failed at
 * 0020_retention_indexes, which uses the 'run' step 0007_job_runs added (found by
 * test/integration/external-postgres.test.ts). Each call applies the migrations of its slice
 * newer than the last one recorded, as `migrate()` does: here, at most one.
 *
 * `through` stops after the first that many migrations (drizzle/meta/_journal.json's order):
 * migrations.test.ts reads the schema between each two.
 */
export async function applyMigrations(handle: Pick<ReturnType<typeof connectDatabase>, "pool">, through?: number): Promise<void> {
  const config = { migrationsFolder };
  const migrations = readMigrationFiles(config);
  const dialect = new PgDialect();
  // The session drizzle's own migrate() hands the dialect (typed loosely there): its relational
  // schema type differs from the one migrate's signature names, not the session it runs on.
  const session = drizzle(handle.pool)._.session as unknown as Parameters<PgDialect["migrate"]>[1];
  const last = Math.min(through ?? migrations.length, migrations.length);
  for (let count = 1; count <= last; count++) await dialect.migrate(migrations.slice(0, count), session, config);
}
