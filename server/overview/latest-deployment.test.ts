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

/**
 * A deployment of the environment (or of `target` services of it), and the events the engine
 * records for it: `steps` per service, then its end (none: it is still on its way).
 */
async function deployment(
  environmentId: string,
  steps: ServiceSteps[],
  outcome: "succeeded" | "failed" | null,
  { action = "DEPLOY", target }: { action?: "DEPLOY" | "DELETE"; target?: string[] } = {},
) {
  const { deployment } = await api().deployments.create({ environmentId, action, serviceIds: target });
  const row = await getDeployment({ ...services, actor: org.as("DEVELOPER") }, deployment.id);
  const event = (fields: Omit<DeploymentEvent, "seq" | "at">): DeploymentEvent => ({ seq: seq++, at: new Date().toISOString(), ...fields });
  await appendEngineEvents(services.db, services, row, [
    event({ serviceId: null, step: "deployment", status: "started" }),
    ...steps.map(([serviceId, step, status]) => event({ serviceId, step, status })),
    ...(outcome ? [event({ serviceId: null, step: "deployment", status: outcome })] : []),
  ]);
  return deployment;
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
  expect(pushed.environmentStatus).toBe(environment?.status);
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

describe("each service's own status while a deployment is on its way (F1, F2 of the newcomer's walkthrough)", () => {
  it("shows each service where its own events are, and the environment's status beside a deployment of some of its services", async () => {
    const project = await api().projects.create({ name: "berths" });
    const environment = await api().environments.create({ projectId: project.id, name: "dev" });
    const git = { url: "https://example.test/app.git", ref: { branch: "main" } };
    const service = (name: string) => api().services.create({ environmentId: environment.id, name, config: { git } });
    const [express, html, vite, worker] = await Promise.all([service("express"), service("html"), service("vite"), service("worker")]);
    await deployment(
      environment.id,
      [express, html, vite, worker].flatMap((s) => wentLive(s.id)),
      "succeeded",
    );

    // A redeploy on its way: express failed, html went live, vite builds, the worker has not started.
    const redeploy = await deployment(
      environment.id,
      [[express.id, "build", "failed"], ...wentLive(html.id), [vite.id, "clone", "succeeded"], [vite.id, "build", "started"]],
      null,
    );
    const during = await statuses(environment.id);
    expect(during.byName).toEqual({ express: "BUILD_ERROR", html: "DEPLOYED", vite: "BUILDING", worker: "QUEUED" });
    expect(during.environment).toMatchObject({ status: "BUILDING", inProgress: [] });
    // A service's last deployment is what that deployment did to it, with its own commit.
    const lastOf = Object.fromEntries(during.environment!.services.map((s) => [s.name, s.lastDeployment]));
    expect(lastOf.html).toMatchObject({ id: redeploy.id, status: "DEPLOYED" });
    expect(lastOf.express).toMatchObject({ id: redeploy.id, status: "BUILD_ERROR" });
    // The history a service's page shows: each deployment's outcome for each service, the same.
    const [listed] = await api().deployments.list({ environmentId: environment.id, limit: 1 });
    expect(listed).toMatchObject({ id: redeploy.id, status: "BUILDING" });
    expect(listed!.outcomes).toEqual({ [express.id]: "BUILD_ERROR", [html.id]: "DEPLOYED", [vite.id]: "BUILDING" });
  });

  it("keeps the environment's status while one of its services is deleted, and says what is deleted beside it", async () => {
    const project = await api().projects.create({ name: "quays" });
    const environment = await api().environments.create({ projectId: project.id, name: "dev" });
    const git = { url: "https://example.test/app.git", ref: { branch: "main" } };
    const service = (name: string) => api().services.create({ environmentId: environment.id, name, config: { git } });
    const [html, vite] = await Promise.all([service("html"), service("vite")]);
    await deployment(environment.id, [...wentLive(html.id), ...wentLive(vite.id)], "succeeded");

    const deleting = await deployment(environment.id, [[html.id, "delete", "started"]], null, { action: "DELETE", target: [html.id] });
    const during = await statuses(environment.id);
    expect(during.environment).toMatchObject({
      status: "DEPLOYED",
      inProgress: [{ deploymentId: deleting.id, action: "DELETE", status: "DELETING", services: ["html"] }],
    });
    expect(during.byName).toEqual({ html: "DELETING", vite: "DEPLOYED" });
  });
});
