/**
 * What an engine's event batch writes (issue 17 prepares these statements once per process): its
 * events, each once, whatever the batch's size; the deployment's status, commits and lease.
 */
import { asc, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import { beforeAll, describe, expect, it } from "vitest";
import type { DeploymentEvent } from "../../engine/protocol/events";
import { createTestDatabase, type TestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import * as schema from "../db/schema";
import { deploymentEvents, deployments } from "../db/schema";
import { recordEngineEvents } from "../engines/engine-session";
import { appendEngineEvents } from "./events";

let database: TestDatabase;
let services: Services;
let org: SeededOrganization;
let clock = Date.parse("2026-12-01T10:00:00Z");

beforeAll(async () => {
  database = await createTestDatabase();
  services = testServices(database.db, { now: () => new Date(clock) });
  org = await seedOrganization(services, "event-batches");
});

const api = () => createCaller({ services, actor: org.as("DEVELOPER") });

async function deploymentOfTwoServices(name: string) {
  const project = await api().projects.create({ name });
  const environment = await api().environments.create({ projectId: project.id, name: "dev" });
  const web = await api().services.create({ environmentId: environment.id, name: "web", config: { git: { url: "file:///srv/web.git" } } });
  const worker = await api().services.create({ environmentId: environment.id, name: "worker", config: { git: { url: "file:///srv/worker.git" } } });
  const { deployment } = await api().deployments.create({ environmentId: environment.id, action: "DEPLOY" });
  return { deploymentId: deployment.id, web: web.id, worker: worker.id };
}

const row = async (id: string) => (await services.db.select().from(deployments).where(eq(deployments.id, id)))[0]!;
const stored = (id: string) => services.db.select().from(deploymentEvents).where(eq(deploymentEvents.deploymentId, id)).orderBy(asc(deploymentEvents.seq));

// Far from the control plane's own sequence (control_plane_event_seq), which numbers its events of the same deployments.
const FIRST_SEQ = 1_000_000_000_000;
let seq = FIRST_SEQ;
const event = (fields: Partial<DeploymentEvent> & Pick<DeploymentEvent, "step" | "status">): DeploymentEvent => ({
  seq: ++seq,
  at: new Date(clock).toISOString(),
  serviceId: null,
  ...fields,
});

describe("an engine's event batches", () => {
  it("store each event once, with its commit, and extend the lease until the end clears it", async () => {
    const { deploymentId, web, worker } = await deploymentOfTwoServices("batches");
    expect((await row(deploymentId)).leaseExpiresAt).toEqual(new Date(clock + 30_000));

    clock += 5_000;
    const started = event({ step: "deployment", status: "started" });
    const clone = event({
      step: "clone",
      status: "succeeded",
      serviceId: web,
      durationMs: 120,
      commit: "a".repeat(40),
      commitInfo: { subject: "Fix the header", author: "Ada" },
    });
    const build = event({ step: "build", status: "started", serviceId: web, message: "building" });
    await recordEngineEvents(services, org.clusterId, deploymentId, [started, clone, build]);
    let current = await row(deploymentId);
    expect(current).toMatchObject({
      status: "BUILDING",
      commits: { [web]: "a".repeat(40) },
      commitDetails: { [web]: { subject: "Fix the header", author: "Ada" } },
    });
    expect(current.startedAt).toEqual(new Date(clock));
    expect(current.leaseExpiresAt).toEqual(new Date(clock + 30_000));

    // Re-sent (the engine did not hear the answer) with one new event: stored once each.
    clock += 5_000;
    const outputs = event({ step: "run", status: "succeeded", serviceId: worker, outputKeys: ["DATABASE_URL"] });
    await recordEngineEvents(services, org.clusterId, deploymentId, [started, clone, build, outputs]);
    expect((await row(deploymentId)).leaseExpiresAt).toEqual(new Date(clock + 30_000));

    // A batch that names no new expiry leaves the lease as it is.
    const leaseBefore = (await row(deploymentId)).leaseExpiresAt;
    clock += 5_000;
    await appendEngineEvents(services.db, services, await row(deploymentId), [event({ step: "build", status: "succeeded", serviceId: web, durationMs: 900 })]);
    expect((await row(deploymentId)).leaseExpiresAt).toEqual(leaseBefore);

    // More events in one batch than a statement is prepared for: stored the same way.
    const many = Array.from({ length: 40 }, (_, index) => event({ step: "health_check", status: "started", serviceId: index % 2 ? web : worker }));
    await recordEngineEvents(services, org.clusterId, deploymentId, many);

    await recordEngineEvents(services, org.clusterId, deploymentId, [event({ step: "deployment", status: "succeeded" })]);
    current = await row(deploymentId);
    expect(current.status).toBe("DEPLOYED");
    expect(current.leaseExpiresAt).toBeNull();
    expect(current.finishedAt).toEqual(new Date(clock));

    const events = await stored(deploymentId);
    const engineEvents = events.filter((e) => e.seq > FIRST_SEQ);
    expect(engineEvents.map((e) => e.seq)).toEqual(Array.from({ length: seq - started.seq + 1 }, (_, i) => started.seq + i));
    expect(engineEvents.find((e) => e.seq === clone.seq)).toMatchObject({
      serviceId: web,
      step: "clone",
      status: "succeeded",
      durationMs: 120,
      commit: "a".repeat(40),
      commitInfo: { subject: "Fix the header", author: "Ada" },
      outputKeys: null,
      message: null,
    });
    expect(engineEvents.find((e) => e.seq === outputs.seq)).toMatchObject({ outputKeys: ["DATABASE_URL"], commitInfo: null });
    expect(engineEvents.find((e) => e.seq === build.seq)).toMatchObject({ message: "building", at: new Date(Date.parse(build.at)) });
  });

  it("cost five statements for a batch that starts a deployment and six for one that ends it, notification rules and the next lease included", async () => {
    const { deploymentId } = await deploymentOfTwoServices("statements");
    const statements: string[] = [];
    const counted = drizzle(database.pool, { schema, logger: { logQuery: (query) => statements.push(query) } });
    clock += 1_000;
    await recordEngineEvents({ ...services, db: counted }, org.clusterId, deploymentId, [event({ step: "deployment", status: "started" })]);
    expect((await row(deploymentId)).status).toBe("BUILDING");
    // The deployment (whose cluster it must be), then begin, the events inserted and read back, the status with its rules, commit.
    expect(statements).toHaveLength(5);
    expect(statements.filter((statement) => statement.includes('"notification_rules"'))).toEqual([expect.stringMatching(/^update "deployments"/)]);

    statements.length = 0;
    await recordEngineEvents({ ...services, db: counted }, org.clusterId, deploymentId, [event({ step: "deployment", status: "succeeded" })]);
    expect((await row(deploymentId)).status).toBe("DEPLOYED");
    // Begin, the deployment with its environment's lock, the events, the status, the queue's head, commit.
    expect(statements).toHaveLength(6);
    expect(statements[1]).toMatch(/ for update of "environments"$/);
  });
});
