import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, inject } from "vitest";
import { connectDatabase, withDatabase, type DatabaseHandle } from "../server/db/client";

/** For engine tests, which may not import the control plane's modules (eslint's rule for engine/). */
export { withDatabase };

export type TestDatabase = DatabaseHandle & { url: string };

/**
 * A fresh database cloned from the migrated template, dropped when the test file ends; `empty`:
 * one without any table (what the migrations start from).
 */
export async function createTestDatabase(options: { empty?: boolean } = {}): Promise<TestDatabase> {
  const adminUrl = inject("postgresUrl");
  const name = `slipway_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(options.empty ? `create database ${name}` : `create database ${name} template ${inject("templateDatabase")}`);
  await admin.end();
  const url = withDatabase(adminUrl, name);
  const handle = connectDatabase(url);
  afterAll(async () => {
    await handle.close();
    const cleanup = new pg.Client({ connectionString: adminUrl });
    await cleanup.connect();
    await cleanup.query(`drop database if exists ${name} with (force)`);
    await cleanup.end();
  });
  return { ...handle, url };
}

/**
 * Runs `during` while the database refuses every connection and has ended the open ones, as a
 * restart of PostgreSQL would; connections are accepted again afterwards, even if it throws.
 */
export async function withDatabaseDown<T>(database: TestDatabase, during: () => Promise<T>): Promise<T> {
  const name = new URL(database.url).pathname.slice(1);
  const admin = new pg.Client({ connectionString: inject("postgresUrl") });
  await admin.connect();
  try {
    await admin.query(`alter database ${pg.escapeIdentifier(name)} allow_connections false`);
    await admin.query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()", [name]);
    return await during();
  } finally {
    await admin.query(`alter database ${pg.escapeIdentifier(name)} allow_connections true`);
    await admin.end();
  }
}
