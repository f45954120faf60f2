import { inArray } from "drizzle-orm";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, withDatabaseDown, type TestDatabase } from "../../test/database";
import { seedOrganization, testServices } from "../../test/support/seed";
import { clusters } from "../db/schema";
import { createHeartbeatStamps } from "./heartbeat-stamps";

/** Longer than any test here: flushes happen when a test closes the stamps. Stamps are in the future: later than any the seed wrote. */
const NO_TIMER_FLUSH_MS = 60_000;

let database: TestDatabase;
let clusterIds: string[];

beforeAll(async () => {
  database = await createTestDatabase();
  const services = testServices(database.db);
  clusterIds = [];
  for (const name of ["one", "two", "three"]) clusterIds.push((await seedOrganization(services, `stamps-${name}`)).clusterId);
});

afterAll(async () => {
  await database?.close();
});

async function stamped(): Promise<Record<string, number | undefined>> {
  const rows = await database.db.select({ id: clusters.id, at: clusters.lastHeartbeatAt }).from(clusters).where(inArray(clusters.id, clusterIds));
  return Object.fromEntries(rows.map((row) => [row.id, row.at?.getTime()]));
}

/** Counts the statements sent through the pool until the returned function is called. */
function countStatements(): () => number {
  let count = 0;
  const onAcquire = () => count++;
  database.pool.on("acquire", onAcquire);
  return () => {
    database.pool.off("acquire", onAcquire);
    return count;
  };
}

describe("the engines' heartbeat stamps of a web process", () => {
  it("writes every cluster's latest stamp in one statement, and never moves a stamp back", async () => {
    const [one, two, three] = clusterIds as [string, string, string];
    const base = Date.now() + 3_600_000;
    const before = await stamped();
    const stamps = createHeartbeatStamps(database.db, pino({ level: "silent" }), NO_TIMER_FLUSH_MS);
    stamps.stamp(one, new Date(base + 1_000));
    stamps.stamp(two, new Date(base + 2_000));
    stamps.stamp(one, new Date(base + 3_000));
    // An older stamp of the same cluster, arriving late, does not replace the newer one.
    stamps.stamp(one, new Date(base + 500));
    const statements = countStatements();
    await stamps.close();
    expect(statements()).toBe(1);
    expect(await stamped()).toEqual({ [one]: base + 3_000, [two]: base + 2_000, [three]: before[three] });

    // A stamp older than the stored one (another web process wrote a later one) leaves it.
    const later = createHeartbeatStamps(database.db, pino({ level: "silent" }), NO_TIMER_FLUSH_MS);
    later.stamp(one, new Date(base + 2_000));
    later.stamp(two, new Date(base + 4_000));
    await later.close();
    expect(await stamped()).toMatchObject({ [one]: base + 3_000, [two]: base + 4_000 });
  });

  it("keeps the stamps a failed write could not store for the next flush", async () => {
    const [one] = clusterIds as [string];
    const at = Date.now() + 2 * 3_600_000;
    const stamps = createHeartbeatStamps(database.db, pino({ level: "silent" }), NO_TIMER_FLUSH_MS);
    stamps.stamp(one, new Date(at));
    // The pool's connections are ended and new ones refused: the write fails, and is logged.
    await withDatabaseDown(database, () => stamps.close());
    expect((await stamped())[one]).not.toBe(at);
    // Written with the next flush once the database is back.
    await stamps.close();
    expect((await stamped())[one]).toBe(at);
  });

  it("writes on its own every flush interval", async () => {
    const [, , three] = clusterIds as [string, string, string];
    const at = Date.now() + 3 * 3_600_000;
    const stamps = createHeartbeatStamps(database.db, pino({ level: "silent" }), 20);
    stamps.stamp(three, new Date(at));
    await expect.poll(async () => (await stamped())[three], { timeout: 5_000 }).toBe(at);
    await stamps.close();
  });
});
