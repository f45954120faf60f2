/**
 * The fleet benchmark's instant runtime (bench/fleet/instant-runtime.ts, issue 17, item 4)
 * under the real engine: orchestration and agent over a real socket to a real control plane
 * take a deployment through every step to DEPLOYED, and a stop to STOPPED, so the benchmark's
 * thousand engines load the control plane as real engines do.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { testPort } from "../support/ports";
import pino from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createInstantRuntime } from "../../bench/fleet/instant-runtime";
import { createAgent } from "../../engine/agent";
import { createEngine } from "../../engine/core";
import { createCaller } from "../../server/api/root";
import { createTestDatabase, type TestDatabase } from "../database";
import { removeEngineHome } from "../process-cleanup";
import { controlPlane, deploymentEnding } from "../support/control-plane";
import { seedOrganization, testServices, type SeededOrganization } from "../support/seed";

const logger = pino({ level: "silent" });
let database: TestDatabase;
let org: SeededOrganization;
let plane: ReturnType<typeof controlPlane>;
let agent: ReturnType<typeof createAgent>;
let home: string;
let api: ReturnType<typeof createCaller>;

beforeAll(async () => {
  database = await createTestDatabase();
  const services = testServices(database.db);
  org = await seedOrganization(services, "instant");
  api = createCaller({ services, actor: org.as("DEVELOPER") });
  const port = await testPort();
  plane = controlPlane({ services, database, port, logger });
  await plane.start();
  home = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-instant-"));
  const routerPort = await testPort();
  agent = createAgent(
    {
      url: `http://127.0.0.1:${port}`,
      token: org.engineToken,
      outboxDir: path.join(home, "outbox"),
      engineVersion: "test",
      capabilities: { runtime: "local", serviceKinds: ["APPLICATION"], databases: [] },
      logger,
    },
    (reporter) => createEngine({ home, routerPort, reporter, logger, runtime: () => createInstantRuntime() }),
  );
  await agent.start();
}, 60_000);

afterAll(async () => {
  await agent?.shutdown();
  await plane?.stop();
  if (home) await removeEngineHome(home);
});

it("takes a deployment through every step to DEPLOYED, and a stop to STOPPED", async () => {
  const project = await api.projects.create({ name: "instant" });
  const environment = await api.environments.create({ projectId: project.id, name: "dev" });
  const service = await api.services.create({ environmentId: environment.id, name: "app", config: { git: { url: "https://git.example.test/app.git" } } });

  const { deployment } = await api.deployments.create({ environmentId: environment.id, action: "DEPLOY" });
  await deploymentEnding(api, deployment.id, ["DEPLOYED"], 30_000, () => "");
  const events = await api.deployments.events({ deploymentId: deployment.id });
  const succeeded = events.filter((event) => event.serviceId === service.id && event.status === "succeeded").map((event) => event.step);
  expect(succeeded).toEqual(["clone", "build", "start", "health_check", "switch", "drain"]);

  const { deployment: stop } = await api.deployments.create({ environmentId: environment.id, action: "STOP" });
  await deploymentEnding(api, stop.id, ["STOPPED"], 30_000, () => "");
}, 60_000);
