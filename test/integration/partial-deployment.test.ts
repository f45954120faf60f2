/**
 * What every page shows after a deployment that went live for some services and failed for
 * others (issues 15 item 4, 16 part 2): a real control plane on a real PostgreSQL, the real
 * engine as its own process, a real build that fails. The overview (which every page reads) and
 * the statuses the realtime stream carries say, per service, what the deployment left of it.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { testPort } from "../support/ports";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCaller } from "../../server/api/root";
import type { Services } from "../../server/context";
import { environmentLiveStatus } from "../../server/overview/live-status";
import { createTestDatabase, type TestDatabase } from "../database";
import { eventually, fixture, request } from "../engine-harness";
import { startGitServer, type GitServer } from "../git-server";
import { removeEngineHome } from "../process-cleanup";
import { controlPlane, deploymentEnding } from "../support/control-plane";
import { spawnEngine, type EngineProcess } from "../support/engine-process";
import { seedOrganization, testServices, type SeededOrganization } from "../support/seed";

const logger = pino({ level: "silent" });

let database: TestDatabase;
let services: Services;
let org: SeededOrganization;
let engine: EngineProcess;
let engineHome: string;
let routerPort: number;
let webPort: number;
let gitServer: GitServer;
let control: ReturnType<typeof controlPlane>;

const api = () => createCaller({ services, actor: org.as("DEVELOPER") });

beforeAll(async () => {
  database = await createTestDatabase();
  services = testServices(database.db);
  org = await seedOrganization(services, "partial");
  [webPort, routerPort] = await Promise.all([testPort(), testPort()]);
  engineHome = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-partial-engine-"));
  gitServer = await startGitServer();
  await gitServer.createRepo("app", fixture("node-app"));
  control = controlPlane({ services, database, port: webPort, logger });
  await control.start();
  engine = spawnEngine({ url: `http://127.0.0.1:${webPort}`, token: org.engineToken, home: engineHome, routerPort });
  // Generous: a busy host starts the engine (tsx compiling it) slowly.
  await eventually(() => engine.output().includes('"msg":"engine started"'), 90_000, "the engine to start").catch((error: Error) => {
    throw new Error(`${error.message}\n${engine.output().slice(-3000)}`);
  });
}, 150_000);

afterAll(async () => {
  await engine?.stop("SIGKILL");
  await control?.stop();
  await gitServer?.close();
  if (engineHome) await removeEngineHome(engineHome);
});

describe("a deployment whose stage partly failed", () => {
  it(
    "shows the service that went live as deployed then running, the one that failed as failed, and the one never started as before",
    { timeout: 180_000 },
    async () => {
      const project = await api().projects.create({ name: "harbor" });
      const environment = await api().environments.create({ projectId: project.id, name: "dev" });
      const app = (name: string, buildCommand?: string) =>
        api().services.create({
          environmentId: environment.id,
          name,
          config: { git: { url: gitServer.url("app"), ref: { branch: "main" } }, healthCheckPath: "/health", ...(buildCommand ? { buildCommand } : {}) },
        });
      const live = await app("web");
      const broken = await app("broken", "echo the build broke on purpose >&2; exit 3");
      const later = await app("later");
      await api().stages.add({ environmentId: environment.id, name: "frontends" });
      await api().stages.setService({ serviceId: later.id, stage: "frontends" });

      const { deployment } = await api().deployments.create({ environmentId: environment.id, action: "DEPLOY" });
      const ended = await deploymentEnding(api(), deployment.id, ["BUILD_ERROR"], 150_000, () => engine.output());
      expect(ended.statusMessage).toMatch(/^1 of 3 services failed: broken; 1 is live, 1 not started; broken: build failed/);
      expect((await request(routerPort, "web-dev-harbor.localhost")).status).toBe(200);

      const shown = async () => {
        const overview = await api().organization.overview({});
        const shownEnvironment = overview.projects.find((p) => p.id === project.id)?.environments.find((e) => e.id === environment.id);
        return {
          environment: shownEnvironment,
          status: Object.fromEntries((shownEnvironment?.services ?? []).map((service) => [service.name, service.status])),
        };
      };
      const pushed = async () => {
        const live = await environmentLiveStatus(services.db, environment.id);
        return Object.fromEntries(live.services.map((service) => [service.serviceId, service.status]));
      };

      // Between the deployment's end and the engine's next report: what the deployment left of each.
      const first = await shown();
      expect(first.environment).toMatchObject({ status: "BUILD_ERROR", partlyDeployed: { deployed: 1, of: 3 } });
      expect(first.status.broken).toBe("BUILD_ERROR");
      expect(first.status.later).toBe("NEVER_DEPLOYED");
      expect(["DEPLOYED", "running"]).toContain(first.status.web);

      // Once the engine reported since: the live service runs; the failed and the skipped ones keep what they showed.
      await eventually(async () => ((await shown()).status.web === "running" ? true : undefined), 30_000, "the engine to report the live service running");
      const reported = await shown();
      expect(reported.status).toEqual({ web: "running", broken: "BUILD_ERROR", later: "NEVER_DEPLOYED" });
      // The statuses every open page receives with deployment:changed are the same.
      expect(await pushed()).toEqual({ [live.id]: "running", [broken.id]: "BUILD_ERROR", [later.id]: "NEVER_DEPLOYED" });
    },
  );
});
