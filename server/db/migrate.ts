import path from "node:path";
import { fileURLToPath } from "node:url";
import { migrate } from "drizzle-orm/node-postgres/migrator";
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
  const handle = connectDatabase(connectionString, { max: 2 });
  try {
    await migrate(handle.db, { migrationsFolder });
    await runMigrations({ connectionString, logger: silentLogger });
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new AppError("UNAVAILABLE", `Database migration failed: ${detail}`, { cause: error });
  } finally {
    await handle.close();
  }
}
