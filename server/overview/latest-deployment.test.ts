import { beforeAll, describe, expect, it } from "vitest";
import type { DeploymentEvent, DeploymentStep, StepStatus } from "../../engine/protocol/events";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { appendEngineEvents } from "../deployments/events";
import { getDeployment } from "../deployments/queries";
import { environmentLiveStatus } from "./live-status";

let services: Services;
let org: SeededOrganization;

beforeAll(async () => {
  const database = await createTestDatabase();
  services = testServices(database.db);
  org = await seedOrganization(services, "outcomes");
});

const api = () => createCaller({ services, actor: org.as("DEVELOPER") });
let seq = Date.now() * 1000;

type ServiceSteps = [serviceId: string, step: DeploymentStep, status: StepStatus];

/** A deployment of the environment, and the events the engine records for it: `steps` per service, then its end. */
async function deployment(environmentId: string, steps: ServiceSteps[], outcome: "succeeded" | "failed") {
  const { deployment } = await api().deployments.create({ environmentId, action: "DEPLOY" });
  const row = await getDeployment({ ...services, actor: org.as("DEVELOPER") }, deployment.id);
  const event = (fields: Omit<DeploymentEvent, "seq" | "at">): DeploymentEvent => ({ seq: seq++, at: new Date().toISOString(), ...fields });
  await appendEngineEvents(services.db, services, row, [
    event({ serviceId: null, step: "deployment", status: "started" }),
    ...steps.map(([serviceId, step, status]) => event({ serviceId, step, status })),
    event({ serviceId: null, step: "deployment", status: outcome }),
  ]);
}

const wentLive = (serviceId: string): ServiceSteps[] => [
  [serviceId, "build", "succeeded"],
  [serviceId, "switch", "succeeded"],
];

/** Every page's statuses of the environment, by service name: the overview's, and the ones the realtime stream carries (the same). */
async function statuses(environmentId: string) {
  const overview = await api().organization.overview({});
  const environment = overview.projects.flatMap((project) => project.environments).find((e) => e.id === environmentId);
  const shown = Object.fromEntries((environment?.services ?? []).map((service) => [service.id, service.status]));
  const pushed = await environmentLiveStatus(services.db, environmentId);
  expect(Object.fromEntries(pushed.services.map((service) => [service.serviceId, service.status]))).toEqual(shown);
  return { environment, byName: Object.fromEntries((environment?.services ?? []).map((service) => [service.name, service.status])) };
}

describe("the status of each service after a deployment that went live for some and failed for others (issue 16)", () => {
  it("shows what the latest deployment that did not skip it left of each service", async () => {
    const project = await api().projects.create({ name: "docks" });
    const environment = await api().environments.create({ projectId: project.id, name: "dev" });
    const git = { url: "https://example.test/app.git", ref: { branch: "main" } };
    const service = (name: string) => api().services.create({ environmentId: environment.id, name, config: { git } });
    const [web, api_] = await Promise.all([service("web"), service("api")]);
    await deployment(environment.id, [...wentLive(web.id), ...wentLive(api_.id)], "succeeded");

    // Added since: the next deployment never starts it (clone skipped), and it was never deployed before.
    const worker = await service("worker");
    await deployment(environment.id, [...wentLive(web.id), [api_.id, "build", "failed"], [worker.id, "clone", "skipped"]], "failed");
    const partly = await statuses(environment.id);
    expect(partly.byName).toEqual({ api: "BUILD_ERROR", web: "DEPLOYED", worker: "NEVER_DEPLOYED" });
    expect(partly.environment).toMatchObject({ status: "BUILD_ERROR", partlyDeployed: { deployed: 1, of: 3 } });

    // Now the web is skipped: it shows what the deployment before left of it, not this one's failure.
    await deployment(environment.id, [[api_.id, "health_check", "failed"], [web.id, "clone", "skipped"], ...wentLive(worker.id)], "failed");
    const next = await statuses(environment.id);
    expect(next.byName).toEqual({ api: "DEPLOYMENT_ERROR", web: "DEPLOYED", worker: "DEPLOYED" });

    // A deployment that failed for all says so, and nothing about a partial deployment.
    await deployment(
      environment.id,
      [
        [web.id, "build", "failed"],
        [api_.id, "build", "failed"],
        [worker.id, "build", "failed"],
      ],
      "failed",
    );
    const failed = await statuses(environment.id);
    expect(failed.byName).toEqual({ api: "BUILD_ERROR", web: "BUILD_ERROR", worker: "BUILD_ERROR" });
    expect(failed.environment?.partlyDeployed).toBeNull();
  });
});
