import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { sql } from "drizzle-orm";
import pino from "pino";
import { beforeAll, describe, expect, it } from "vitest";
import type { DeploymentStatus } from "../../engine/protocol/events";
import { createTestDatabase, type TestDatabase } from "../../test/database";
import { eventually } from "../../test/engine-harness";
import { startWorker } from "../../worker/runner";
import { addJob } from "../jobs/add-job";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import {
  auditEvents,
  deploymentEvents,
  deployments,
  endedSessions,
  environments,
  gitConnections,
  logLines,
  metricSamples,
  projects,
  services,
  users,
  webhookDeliveries,
  type StoredSnapshot,
} from "../db/schema";
import { loadEnv } from "../env";
import { MINUTE } from "../metrics/metrics";
import { applyRetention, defaultRetention, type RetentionPolicy } from "./retention";

let database: TestDatabase;
let org: SeededOrganization;
const now = new Date();
const daysAgo = (days: number) => new Date(now.getTime() - days * 86_400_000);
const policy: RetentionPolicy = { deploymentDays: 90, runtimeLogDays: 14, metricDays: 30, webhookDays: 30, auditDays: 365 };

beforeAll(async () => {
  database = await createTestDatabase();
  org = await seedOrganization(testServices(database.db), "retention");
});

async function environment(name: string) {
  const [project] = await database.db.insert(projects).values({ organizationId: org.organizationId, name }).returning();
  const [env] = await database.db
    .insert(environments)
    .values({ organizationId: org.organizationId, projectId: project!.id, name, clusterId: org.clusterId })
    .returning();
  return env!.id;
}

async function service(environmentId: string, name: string, kind: "APPLICATION" | "JOB" = "APPLICATION") {
  const [row] = await database.db
    .insert(services)
    .values({ organizationId: org.organizationId, environmentId, name, kind, config: {} as never })
    .returning();
  return row!.id;
}

/** A deployment created `age` days ago, with three events and two build log lines. */
async function deployment(
  environmentId: string,
  age: number,
  status: DeploymentStatus,
  serviceIds: string[] | null,
  runOutputs?: { serviceId: string; keys: string[] | null },
) {
  const [row] = await database.db
    .insert(deployments)
    .values({
      organizationId: org.organizationId,
      environmentId,
      clusterId: org.clusterId,
      action: "DEPLOY",
      serviceIds,
      snapshot: {} as StoredSnapshot,
      status,
      origin: "API",
      actorLabel: "test",
      createdAt: daysAgo(age),
    })
    .returning();
  const id = row!.id;
  const at = daysAgo(age);
  await database.db.insert(deploymentEvents).values([
    { deploymentId: id, seq: 1, step: "deployment", status: "started", at },
    { deploymentId: id, seq: 2, step: runOutputs ? "run" : "build", status: "succeeded", serviceId: runOutputs?.serviceId, outputKeys: runOutputs?.keys, at },
    { deploymentId: id, seq: 3, step: "deployment", status: "succeeded", at },
  ]);
  await database.db.insert(logLines).values(
    [1, 2].map((seq) => ({
      organizationId: org.organizationId,
      stream: `deployment:${id}`,
      seq,
      deploymentId: id,
      fd: "stdout" as const,
      text: "building",
      at,
    })),
  );
  return id;
}

async function remaining() {
  const events = await database.db.execute<{ deployment_id: string; count: number }>(
    sql`select deployment_id, count(*)::int as count from deployment_events group by deployment_id`,
  );
  const builds = await database.db.execute<{ stream: string; count: number }>(
    sql`select stream, count(*)::int as count from log_lines where stream like 'deployment:%' group by stream`,
  );
  return {
    events: Object.fromEntries(events.rows.map((row) => [row.deployment_id, row.count])),
    buildLogs: Object.fromEntries(builds.rows.map((row) => [row.stream.slice("deployment:".length), row.count])),
  };
}

describe("retention", () => {
  it("deletes what each policy no longer keeps, and keeps what statuses, rollbacks and outputs are derived from", async () => {
    const main = await environment("main");
    const [web, worker, migrate] = [await service(main, "web"), await service(main, "worker"), await service(main, "migrate", "JOB")];
    // worker's latest deployment and its latest successful one: the whole environment, long ago.
    const wholeOld = await deployment(main, 200, "DEPLOYED", null);
    // web's older deployments: neither its latest nor its latest successful one, their events go.
    await deployment(main, 150, "DEPLOYED", [web]);
    await deployment(main, 120, "DEPLOYMENT_ERROR", [web]);
    // Still building after 100 days (its engine may yet report): not finished, kept.
    const stuck = await deployment(main, 100, "BUILDING", [web]);
    // The job's latest run with outputs is old, neither its latest nor its latest successful deployment; a newer
    // run output nothing: the environment still shows the old run's outputs (server/variables/job-outputs.ts).
    const jobOutputs = await deployment(main, 100, "DEPLOYED", [migrate], { serviceId: migrate, keys: ["DATABASE_URL"] });
    const jobNoOutputs = await deployment(main, 2, "DEPLOYED", [migrate], { serviceId: migrate, keys: null });
    const webRecent = await deployment(main, 1, "DEPLOYED", [web]);
    // Another environment whose only deployment is old: the latest of its environment and services.
    const staging = await environment("staging");
    await service(staging, "web");
    const stagingOnly = await deployment(staging, 300, "DEPLOYED", null);

    const runtime = (serviceId: string, seq: number, age: number) => ({
      organizationId: org.organizationId,
      stream: `service:${serviceId}`,
      seq,
      serviceId,
      fd: "stdout" as const,
      text: `line ${seq}`,
      at: daysAgo(age),
    });
    await database.db.insert(logLines).values([runtime(web, 1, 20), runtime(web, 2, 15), runtime(web, 3, 13), runtime(worker, 1, 30), runtime(worker, 2, 1)]);

    const sample = (serviceId: string, resolution: number, age: number) => ({
      serviceId,
      resolution,
      at: daysAgo(age),
      cpuPercent: 1,
      memoryBytes: 1,
      restarts: 0,
      requestsPerSecond: 0,
      errorsPerSecond: 0,
    });
    await database.db.insert(metricSamples).values([sample(web, MINUTE, 40), sample(web, MINUTE, 31), sample(web, MINUTE, 29), sample(worker, MINUTE, 1)]);

    const [connection] = await database.db
      .insert(gitConnections)
      .values({ organizationId: org.organizationId, provider: "github", name: "github", encryptedSecret: "sealed" })
      .returning();
    const delivery = (deliveryId: string, status: "PENDING" | "PROCESSED" | "FAILED", age: number) => ({
      organizationId: org.organizationId,
      connectionId: connection!.id,
      deliveryId,
      event: "push",
      headers: {},
      payload: "{}",
      status,
      receivedAt: daysAgo(age),
    });
    await database.db
      .insert(webhookDeliveries)
      .values([
        delivery("old-processed", "PROCESSED", 40),
        delivery("old-failed", "FAILED", 31),
        delivery("old-pending", "PENDING", 40),
        delivery("new", "PROCESSED", 2),
      ]);

    const audit = (action: string, age: number) => ({
      organizationId: org.organizationId,
      actorType: "user",
      actorLabel: "test",
      origin: "API" as const,
      action,
      targetType: "service",
      at: daysAgo(age),
    });
    await database.db.insert(auditEvents).values([audit("old", 400), audit("year", 364), audit("new", 1)]);

    // Signed-out sessions: the row of a cookie that expired is no longer needed, the others are.
    const [member] = await database.db.select({ id: users.id }).from(users).limit(1);
    const ended = (sessionId: string, expiresInMs: number) => ({ sessionId, userId: member!.id, expiresAt: new Date(now.getTime() + expiresInMs) });
    await database.db.insert(endedSessions).values([ended("expired", -1_000), ended("expiring", 60_000), ended("fresh", 6 * 86_400_000)]);

    const outcome = await applyRetention(database.db, policy, now, { batchSize: 5000, pauseMs: 0 });

    expect(outcome.deploymentEvents.deleted).toBe(6);
    expect(outcome.buildLogs.deleted).toBe(4);
    const kept = [wholeOld, stuck, jobOutputs, jobNoOutputs, webRecent, stagingOnly];
    expect(await remaining()).toEqual({
      events: Object.fromEntries(kept.map((id) => [id, 3])),
      buildLogs: Object.fromEntries(kept.map((id) => [id, 2])),
    });
    // The deployment rows (snapshots, history) all stay.
    expect((await database.db.select().from(deployments)).length).toBe(8);

    const runtimeLeft = await database.db.execute<{ text: string; stream: string }>(
      sql`select stream, text from log_lines where stream like 'service:%' order by stream, seq`,
    );
    expect(runtimeLeft.rows).toEqual(
      expect.arrayContaining([
        { stream: `service:${web}`, text: "line 3" },
        { stream: `service:${worker}`, text: "line 2" },
      ]),
    );
    expect(runtimeLeft.rows).toHaveLength(2);
    expect(outcome.runtimeLogs.deleted).toBe(3);

    const metricsLeft = await database.db.execute<{ age: number }>(
      sql`select round(extract(epoch from ${now.toISOString()}::timestamptz - at) / 86400)::int as age from metric_samples order by at`,
    );
    expect(metricsLeft.rows.map((row) => row.age)).toEqual([29, 1]);

    const deliveriesLeft = await database.db.select({ deliveryId: webhookDeliveries.deliveryId }).from(webhookDeliveries);
    expect(deliveriesLeft.map((row) => row.deliveryId).sort()).toEqual(["new", "old-pending"]);

    const auditLeft = await database.db.select({ action: auditEvents.action }).from(auditEvents);
    expect(auditLeft.map((row) => row.action).sort()).toEqual(["new", "year"]);

    const sessionsLeft = await database.db.select({ sessionId: endedSessions.sessionId }).from(endedSessions);
    expect(sessionsLeft.map((row) => row.sessionId).sort()).toEqual(["expiring", "fresh"]);
    expect(outcome.endedSessions.deleted).toBe(1);

    // Idempotent: a second run finds nothing more.
    const again = await applyRetention(database.db, policy, now, { batchSize: 5000, pauseMs: 0 });
    expect(Object.values(again).every((swept) => swept.deleted === 0)).toBe(true);
  });

  it("deletes in batches of the given size while inserts into the same table go on", async () => {
    await database.db.execute(sql`delete from audit_events`);
    await database.db.execute(sql`
      insert into audit_events (actor_type, actor_label, origin, action, target_type, at)
      select 'user', 'test', 'API', 'old', 'service', now() - interval '400 days' - n * interval '1 second' from generate_series(1, 1050) n`);
    let insertedAt = 0;
    const retention = applyRetention(database.db, policy, now, { batchSize: 100, pauseMs: 30 }).then((outcome) => ({ outcome, doneAt: performance.now() }));
    // Between the batches, on another connection: it must not wait for the whole run.
    await new Promise((resolve) => setTimeout(resolve, 60));
    await database.pool.query(
      "insert into audit_events (actor_type, actor_label, origin, action, target_type) values ('user', 'test', 'API', 'during', 'service')",
    );
    insertedAt = performance.now();
    const { outcome, doneAt } = await retention;

    expect(outcome.auditEvents).toEqual({ deleted: 1050, statements: 11 });
    expect(insertedAt).toBeLessThan(doneAt);
    const left = await database.db.select({ action: auditEvents.action }).from(auditEvents);
    expect(left).toEqual([{ action: "during" }]);
  });
});

describe("the apply_retention task", () => {
  it("runs in the worker with the policy it was started with, and logs what it deleted", async () => {
    await database.db.execute(sql`delete from audit_events`);
    await database.db.execute(sql`
      insert into audit_events (actor_type, actor_label, origin, action, target_type, at)
      select 'user', 'test', 'API', 'old', 'service', now() - interval '2 days' from generate_series(1, 3)`);
    const lines: string[] = [];
    const logger = pino({ level: "debug" }, { write: (line: string) => void lines.push(line) });
    const worker = await startWorker({
      services: testServices(database.db),
      connectionString: database.url,
      logger,
      retention: { ...policy, auditDays: 1 },
    });
    try {
      await addJob(database.db, "apply_retention", {});
      await eventually(() => lines.some((line) => line.includes("retention deleted 3 auditEvents (1 statements)")), 20_000, "the task's report");
      expect(await database.db.select().from(auditEvents)).toEqual([]);
    } finally {
      await worker.stop();
    }
  });
});

describe("retention settings", () => {
  it("default to the documented periods", () => {
    expect(defaultRetention).toEqual({ deploymentDays: 90, runtimeLogDays: 14, metricDays: 30, webhookDays: 30, auditDays: 365 });
    expect(loadEnv({ SLIPWAY_RETENTION_LOGS_DAYS: "7" }).SLIPWAY_RETENTION_LOGS_DAYS).toBe(7);
  });

  it.each(["false", "-1", "7d", "0", "1.5", "", "99999"])("refuse %j", (value) => {
    expect(() => loadEnv({ SLIPWAY_RETENTION_AUDIT_DAYS: value })).toThrow(/SLIPWAY_RETENTION_AUDIT_DAYS: must be/);
  });

  it("stop the worker at boot with the variable named", async () => {
    const run = promisify(execFile)("npx", ["tsx", "worker/main.ts"], {
      env: { ...process.env, DATABASE_URL: "postgres://nobody@127.0.0.1:1/none", SLIPWAY_RETENTION_LOGS_DAYS: "7d" },
    });
    await expect(run).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining('SLIPWAY_RETENTION_LOGS_DAYS: must be a whole number of days, written without a unit (e.g. "30"), at least 1'),
    });
  }, 60_000);
});
