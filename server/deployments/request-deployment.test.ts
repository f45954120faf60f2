import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { deployments } from "../db/schema";
import { cipherFor } from "../secrets/organization-cipher";
import { openSnapshot } from "./snapshot";

let services: Services;
let org: SeededOrganization;

beforeAll(async () => {
  services = testServices((await createTestDatabase()).db);
  org = await seedOrganization(services, "request-deployment");
});

const api = () => createCaller({ services, actor: org.as("DEVELOPER") });

/** The deployment's snapshot as its engine receives it: values opened. */
async function openedSnapshot(deploymentId: string) {
  const [row] = await services.db.select().from(deployments).where(eq(deployments.id, deploymentId));
  return openSnapshot(await cipherFor(services.db, services.keyring, org.organizationId), deploymentId, row!.snapshot);
}

const variablesOf = (spec: { variables: { key: string; value: string }[] } | undefined) =>
  Object.fromEntries((spec?.variables ?? []).map(({ key, value }) => [key, value]));

describe("a deployment's snapshot (read before the request's transaction, issue 17)", () => {
  it("carries the variables of its project, environment and services, the narrowest winning, its databases', and its stages in order", async () => {
    const project = await api().projects.create({ name: "shop" });
    const environment = await api().environments.create({ projectId: project.id, name: "main" });
    const other = await api().environments.create({ projectId: project.id, name: "other" });
    const web = await api().services.create({ environmentId: environment.id, name: "web", config: { git: { url: "file:///srv/web.git" } } });
    const api2 = await api().services.create({ environmentId: environment.id, name: "api", config: { git: { url: "file:///srv/api.git" } } });
    await api().services.create({ environmentId: environment.id, name: "orders-db", kind: "DATABASE", config: { engine: "postgresql" } });
    const elsewhere = await api().services.create({ environmentId: other.id, name: "web", config: { git: { url: "file:///srv/web.git" } } });

    await api().variables.set({ scope: "PROJECT", targetId: project.id, key: "REGION", value: "eu" });
    await api().variables.set({ scope: "PROJECT", targetId: project.id, key: "LOG_LEVEL", value: "info" });
    await api().variables.set({ scope: "ENVIRONMENT", targetId: environment.id, key: "LOG_LEVEL", value: "warn" });
    await api().variables.set({ scope: "SERVICE", targetId: web.id, key: "LOG_LEVEL", value: "debug" });
    await api().variables.set({ scope: "SERVICE", targetId: web.id, key: "TOKEN", value: "s3cret", secret: true });
    await api().variables.set({ scope: "SERVICE", targetId: api2.id, key: "ONLY_API", value: "1" });
    await api().variables.set({ scope: "ENVIRONMENT", targetId: other.id, key: "REGION", value: "us" });
    await api().variables.set({ scope: "SERVICE", targetId: elsewhere.id, key: "ONLY_ELSEWHERE", value: "1" });

    // api after web: a stage of its own, after the default one (where the database and web stay).
    await api().stages.add({ environmentId: environment.id, name: "backends" });
    await api().stages.add({ environmentId: environment.id, name: "empty" });
    await api().stages.setService({ serviceId: api2.id, stage: "backends" });

    const { deployment } = await api().deployments.create({ environmentId: environment.id, action: "DEPLOY" });
    const snapshot = await openedSnapshot(deployment.id);
    expect(snapshot.stages?.map((stage) => stage.name)).toEqual(["default", "backends"]);
    expect(snapshot.services.map((service) => service.name)).toEqual(["orders-db", "web", "api"]);
    const [webSpec, apiSpec] = [snapshot.services.find((s) => s.id === web.id), snapshot.services.find((s) => s.id === api2.id)];
    expect(variablesOf(webSpec)).toMatchObject({ REGION: "eu", LOG_LEVEL: "debug", TOKEN: "s3cret", SLIPWAY_ORDERS_DB_USER: "orders_db" });
    expect(variablesOf(webSpec)).not.toHaveProperty("ONLY_API");
    expect(variablesOf(apiSpec)).toMatchObject({ REGION: "eu", LOG_LEVEL: "warn", ONLY_API: "1", SLIPWAY_ORDERS_DB_USER: "orders_db" });
    expect(webSpec!.variables.find((variable) => variable.key === "TOKEN")?.secret).toBe(true);
    for (const spec of snapshot.services) expect(variablesOf(spec)).not.toHaveProperty("ONLY_ELSEWHERE");

    // A deployment of some services carries only theirs, with the stages they are in.
    const { deployment: some } = await api().deployments.create({ environmentId: environment.id, action: "RESTART", serviceIds: [api2.id] });
    const partial = await openedSnapshot(some.id);
    expect(partial.stages).toEqual([{ name: "backends", serviceIds: [api2.id] }]);
    expect(variablesOf(partial.services[0])).toMatchObject({ LOG_LEVEL: "warn", ONLY_API: "1" });
  });

  it("refuses an environment of another organization as an unknown one, and writes nothing", async () => {
    const stranger = await seedOrganization(services, "stranger");
    const theirs = createCaller({ services, actor: stranger.as("OWNER") });
    const project = await theirs.projects.create({ name: "theirs" });
    const environment = await theirs.environments.create({ projectId: project.id, name: "main" });
    await theirs.services.create({ environmentId: environment.id, name: "web", config: { git: { url: "file:///srv/web.git" } } });

    await expect(api().deployments.create({ environmentId: environment.id, action: "DEPLOY" })).rejects.toMatchObject({
      code: "NOT_FOUND",
      message: "Environment not found",
    });
    expect(await services.db.select().from(deployments).where(eq(deployments.environmentId, environment.id))).toEqual([]);
  });
});
