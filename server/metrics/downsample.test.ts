import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import type { Services } from "../context";
import { environments, metricSamples, projects, services } from "../db/schema";
import { downsampleMetrics, MINUTE, RAW } from "./metrics";

let database: TestDatabase;
let svc: Services;
let org: SeededOrganization;

beforeAll(async () => {
  database = await createTestDatabase();
  svc = testServices(database.db);
  org = await seedOrganization(svc, "downsample");
});

async function service(name: string): Promise<string> {
  const [project] = await database.db.insert(projects).values({ organizationId: org.organizationId, name }).returning();
  const [environment] = await database.db
    .insert(environments)
    .values({ organizationId: org.organizationId, projectId: project!.id, name, clusterId: org.clusterId })
    .returning();
  const [row] = await database.db
    .insert(services)
    .values({ organizationId: org.organizationId, environmentId: environment!.id, name, kind: "APPLICATION", config: {} as never })
    .returning();
  return row!.id;
}

/** Six raw samples, ten seconds apart, in the minute that starts at `minute`. */
async function samplesIn(serviceId: string, minute: Date, memoryBytes: number) {
  const rows = Array.from({ length: 6 }, (_, i) => ({
    serviceId,
    resolution: RAW,
    at: new Date(minute.getTime() + i * 10_000),
    cpuPercent: 10,
    memoryBytes,
    memoryLimitBytes: null,
    restarts: 0,
    requestsPerSecond: 1,
    errorsPerSecond: 0,
    p50Ms: null,
    p95Ms: null,
    p99Ms: null,
  }));
  await database.db.insert(metricSamples).values(rows);
}

const rollups = async (serviceId: string) =>
  (await database.db.select().from(metricSamples).where(eq(metricSamples.serviceId, serviceId))).filter((row) => row.resolution === MINUTE);

describe("metric roll-ups", () => {
  it("rolls up each service from its own last minute: an engine whose clock runs behind loses nothing", async () => {
    const now = new Date(Math.floor(Date.now() / 60_000) * 60_000 + 30_000);
    const at = (minutesAgo: number) => new Date(Math.floor(now.getTime() / 60_000) * 60_000 - minutesAgo * 60_000);
    const onTime = await service("on-time");
    const behind = await service("behind");
    const later = { ...svc, now: () => now };

    // The first engine's samples arrive and are rolled up to the last finished minute.
    await samplesIn(onTime, at(3), 100);
    await samplesIn(onTime, at(2), 100);
    await downsampleMetrics(later);
    expect((await rollups(onTime)).map((row) => row.at.getTime())).toEqual([at(3).getTime(), at(2).getTime()]);

    // Another engine, its clock five minutes behind, ships samples stamped before that minute.
    await samplesIn(behind, at(7), 200);
    await samplesIn(behind, at(6), 200);
    const second = await downsampleMetrics(later);
    expect(second.rolledUp).toBe(2);
    const behindRollups = await rollups(behind);
    expect(behindRollups.map((row) => row.at.getTime()).sort()).toEqual([at(7).getTime(), at(6).getTime()]);
    expect(behindRollups.every((row) => Number(row.memoryBytes) === 200)).toBe(true);

    // Still idempotent, for both.
    expect((await downsampleMetrics(later)).rolledUp).toBe(0);
    expect(await rollups(onTime)).toHaveLength(2);
  });
});
