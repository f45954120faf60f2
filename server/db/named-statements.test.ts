import { sql } from "drizzle-orm";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../test/database";
import { seedOrganization, testServices } from "../../test/support/seed";
import { connectDatabase, type DatabaseHandle } from "./client";
import { nameStatements } from "./named-statements";
import { organizations } from "./schema";

let database: TestDatabase;
let single: DatabaseHandle;

beforeAll(async () => {
  database = await createTestDatabase();
  // One connection: every statement below is prepared (or not) on the one this test inspects.
  single = connectDatabase(database.url, { max: 1 });
  await seedOrganization(testServices(database.db), "named");
});
afterAll(async () => {
  await single?.close();
});

const prepared = async (pool: pg.Pool) =>
  (await pool.query<{ name: string; statement: string }>("select name, statement from pg_prepared_statements order by prepare_time")).rows;

describe("named statements", () => {
  it("prepares each of the ORM's statements once per connection, and runs it again by name", async () => {
    const byId = (id: string) =>
      single.db
        .select({ id: organizations.id, name: organizations.name })
        .from(organizations)
        .where(sql`${organizations.id} = ${id}`);
    expect(await byId("00000000-0000-0000-0000-000000000000")).toEqual([]);
    const [organization] = await single.db.select({ id: organizations.id, name: organizations.name }).from(organizations).limit(1);
    expect(await byId(organization!.id)).toEqual([organization]);
    const ours = (await prepared(single.pool)).filter((row) => row.statement.includes('from "organizations" where "organizations"."id" = $1'));
    expect(ours).toHaveLength(1);
    expect(ours[0]!.name).toMatch(/^slipway_/);
  });

  it("leaves transaction control and several commands in one text unnamed, and they still run", async () => {
    const before = (await prepared(single.pool)).length;
    await single.db.transaction(async (tx) => {
      await tx.execute(sql`select 1`);
    });
    await expect(single.db.execute(sql.raw("select 1 as one; select 2 as two"))).resolves.toBeDefined();
    const added = (await prepared(single.pool)).slice(before).map((row) => row.statement);
    expect(added.filter((text) => /begin|commit|select 2/.test(text))).toEqual([]);
  });

  it("names no more distinct texts than its bound; the others run unnamed", async () => {
    const pool = new pg.Pool({ connectionString: database.url, max: 1 });
    nameStatements(pool, { max: 2 });
    try {
      for (const column of ["id", "name", "created_at", "updated_at"]) {
        await pool.query({
          text: `select ${column} from organizations where id = $1 /* a text long enough */`,
          values: ["00000000-0000-0000-0000-000000000000"],
        });
      }
      expect((await prepared(pool)).map((row) => row.statement)).toEqual([
        "select id from organizations where id = $1 /* a text long enough */",
        "select name from organizations where id = $1 /* a text long enough */",
      ]);
    } finally {
      await pool.end();
    }
  });
});
