import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type pg from "pg";
import { describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/database";
import { applyMigrations } from "./migrate";

/**
 * The rule that makes rolling upgrades safe (deploy/README.md, "Upgrading without downtime"):
 * between `npm run migrate` and the last restart, the previous release's web and worker
 * processes run on the new schema, so a migration must not take away what that release reads or
 * writes. Checked on PostgreSQL's catalog, migration by migration, rather than on the SQL's text:
 * a drop, a rename (a drop beside an addition), a new type, a column that became NOT NULL, a new
 * NOT NULL column without a default (the old release's INSERTs omit it), an enum value removed.
 *
 * A change that breaks the rule is split over two releases (the code first stops using what the
 * next release removes); once it is, the migration that removes it is listed in REVIEWED with why
 * the release before it no longer uses what it takes away.
 */
const REVIEWED: Record<string, { changes: string[]; why: string }> = {};

type Column = { type: string; notNull: boolean; hasDefault: boolean };
/** The parts of the public schema a release's queries depend on. */
type Catalog = { tables: Map<string, Map<string, Column>>; enums: Map<string, string[]> };

async function readCatalog(pool: pg.Pool): Promise<Catalog> {
  const columns = await pool.query<{ table: string; column: string; type: string; not_null: boolean; has_default: boolean }>(`
    select c.relname as table, a.attname as column, format_type(a.atttypid, a.atttypmod) as type, a.attnotnull as not_null,
           (a.atthasdef or a.attidentity <> '' or a.attgenerated <> '') as has_default
      from pg_attribute a
      join pg_class c on c.oid = a.attrelid
      join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relispartition and a.attnum > 0 and not a.attisdropped`);
  const tables = new Map<string, Map<string, Column>>();
  for (const row of columns.rows) {
    const table = tables.get(row.table) ?? new Map<string, Column>();
    tables.set(row.table, table);
    table.set(row.column, { type: row.type, notNull: row.not_null, hasDefault: row.has_default });
  }
  const enums = await pool.query<{ name: string; labels: string[] }>(`
    select t.typname as name, array_agg(e.enumlabel::text order by e.enumsortorder) as labels
      from pg_type t join pg_enum e on e.enumtypid = t.oid join pg_namespace n on n.oid = t.typnamespace
     where n.nspname = 'public'
     group by t.typname`);
  return { tables, enums: new Map(enums.rows.map((row) => [row.name, row.labels])) };
}

/** What a schema change takes away from a release written for `before`, in words. */
function breakingChanges(before: Catalog, after: Catalog): string[] {
  const changes: string[] = [];
  for (const [name, columns] of before.tables) {
    const now = after.tables.get(name);
    if (!now) {
      changes.push(`drops table ${name}`);
      continue;
    }
    for (const [column, was] of columns) {
      const is = now.get(column);
      if (!is) changes.push(`drops column ${name}.${column}`);
      else if (is.type !== was.type) changes.push(`changes the type of ${name}.${column} from ${was.type} to ${is.type}`);
      else if (is.notNull && !was.notNull) changes.push(`makes ${name}.${column} NOT NULL`);
      else if (is.notNull && was.hasDefault && !is.hasDefault) changes.push(`drops the default of ${name}.${column}, which is NOT NULL`);
    }
    for (const [column, is] of now) {
      if (!columns.has(column) && is.notNull && !is.hasDefault) changes.push(`adds ${name}.${column}, NOT NULL without a default`);
    }
  }
  for (const [name, labels] of before.enums) {
    const now = after.enums.get(name);
    if (!now) changes.push(`drops enum ${name}`);
    else for (const label of labels) if (!now.includes(label)) changes.push(`removes '${label}' from enum ${name}`);
  }
  return changes;
}

const journal = JSON.parse(fs.readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../drizzle/meta/_journal.json"), "utf8")) as {
  entries: Array<{ idx: number; tag: string }>;
};

describe("migrations", () => {
  it("each leaves the release before it the schema it uses, unless reviewed", async () => {
    const database = await createTestDatabase({ empty: true });
    const found: Record<string, string[]> = {};
    await applyMigrations(database, 1);
    let before = await readCatalog(database.pool);
    for (const { idx, tag } of journal.entries.slice(1)) {
      await applyMigrations(database, idx + 1);
      const after = await readCatalog(database.pool);
      const changes = breakingChanges(before, after);
      if (changes.length > 0) found[tag] = changes;
      before = after;
    }
    // Every breaking change is reviewed, and every review still matches its migration.
    expect(found).toEqual(Object.fromEntries(Object.entries(REVIEWED).map(([tag, review]) => [tag, review.changes])));
    expect(before.tables.size).toBeGreaterThan(20);
  });

  it("names what a migration that breaks the rule takes away", async () => {
    const database = await createTestDatabase();
    const before = await readCatalog(database.pool);
    // What drizzle-kit writes for a rename, a type change, a required column, a dropped enum value.
    await database.pool.query(`
      ALTER TABLE "webhook_deliveries" RENAME COLUMN "error" TO "failure";
      ALTER TABLE "webhook_deliveries" ALTER COLUMN "attempts" SET DATA TYPE bigint;
      ALTER TABLE "webhook_deliveries" ALTER COLUMN "processed_at" SET NOT NULL;
      ALTER TABLE "webhook_deliveries" ALTER COLUMN "status" DROP DEFAULT;
      ALTER TABLE "webhook_deliveries" ADD COLUMN "region" text NOT NULL;
      ALTER TABLE "webhook_deliveries" ADD COLUMN "note" text;
      ALTER TABLE "webhook_deliveries" ADD COLUMN "priority" integer NOT NULL DEFAULT 0;
      ALTER TABLE "log_lines" ALTER COLUMN "fd" SET DATA TYPE text;
      DROP TYPE "log_fd";
      CREATE TYPE "log_fd" AS ENUM ('stdout', 'stderr');
      ALTER TABLE "log_lines" ALTER COLUMN "fd" SET DATA TYPE "log_fd" USING "fd"::"log_fd";
      ALTER TABLE "invites" RENAME TO "invitations";
    `);
    expect(breakingChanges(before, await readCatalog(database.pool)).sort()).toEqual(
      [
        "drops column webhook_deliveries.error",
        "changes the type of webhook_deliveries.attempts from integer to bigint",
        "makes webhook_deliveries.processed_at NOT NULL",
        "drops the default of webhook_deliveries.status, which is NOT NULL",
        "adds webhook_deliveries.region, NOT NULL without a default",
        "removes 'system' from enum log_fd",
        "drops table invites",
      ].sort(),
    );
  });
});
