import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../test/database";
import { seedOrganization, testServices } from "../../test/support/seed";
import { connectDatabase, type DatabaseHandle } from "./client";
import { preparedOnce } from "./prepared";
import { organizations } from "./schema";

let database: TestDatabase;
let other: DatabaseHandle;
let organizationId: string;

beforeAll(async () => {
  database = await createTestDatabase();
  other = connectDatabase(database.url, { max: 2 });
  ({ organizationId } = await seedOrganization(testServices(database.db), "prepared"));
});
afterAll(async () => {
  await other?.close();
});

const statements = preparedOnce((db) => ({
  rename: db
    .update(organizations)
    .set({ name: sql`${sql.placeholder("name")}`, updatedAt: sql`now()` })
    .where(eq(organizations.id, sql.placeholder("id")))
    .returning({ name: organizations.name })
    .prepare("prepared_test_rename"),
  nameOf: db
    .select({ name: organizations.name })
    .from(organizations)
    .where(eq(organizations.id, sql.placeholder("id")))
    .prepare("prepared_test_name_of"),
}));

describe("statements prepared once", () => {
  it("run inside the transaction they are given, whichever handle built them", async () => {
    // Built on the pool first: a transaction's runs must not go back to it.
    expect(await statements(database.db).nameOf.execute({ id: organizationId })).toEqual([{ name: "prepared" }]);
    await expect(
      database.db.transaction(async (tx) => {
        expect(await statements(tx).rename.execute({ id: organizationId, name: "renamed" })).toEqual([{ name: "renamed" }]);
        // The transaction sees its own write; the pool does not see it before the commit.
        expect(await statements(tx).nameOf.execute({ id: organizationId })).toEqual([{ name: "renamed" }]);
        expect(await statements(database.db).nameOf.execute({ id: organizationId })).toEqual([{ name: "prepared" }]);
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
    expect(await statements(database.db).nameOf.execute({ id: organizationId })).toEqual([{ name: "prepared" }]);
  });

  it("run on another database handle's pool, and commit with its transaction", async () => {
    await other.db.transaction(async (tx) => {
      await statements(tx).rename.execute({ id: organizationId, name: "committed" });
      expect(await statements(database.db).nameOf.execute({ id: organizationId })).toEqual([{ name: "prepared" }]);
    });
    expect(await statements(database.db).nameOf.execute({ id: organizationId })).toEqual([{ name: "committed" }]);
    expect(await statements(other.db).nameOf.execute({ id: organizationId })).toEqual([{ name: "committed" }]);
  });
});
