import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { deployments } from "../db/schema";

let services: Services;
let org: SeededOrganization;

beforeAll(async () => {
  services = testServices((await createTestDatabase()).db);
  org = await seedOrganization(services, "promote");
});

const api = () => createCaller({ services, actor: org.as("DEVELOPER") });
const COMMIT = "0123456789abcdef0123456789abcdef01234567";

describe("promote", () => {
  it("deploys into production the commits staging ran, service by name, keeping production's own configuration", async () => {
    const project = await api().projects.create({ name: "shop" });
    const staging = await api().environments.create({ projectId: project.id, name: "staging" });
    const production = await api().environments.create({ projectId: project.id, name: "production" });
    const git = { url: "https://example.test/shop/web.git", ref: { branch: "main" } };
    const stagingWeb = await api().services.create({ environmentId: staging.id, name: "web", config: { git } });
    const productionWeb = await api().services.create({ environmentId: production.id, name: "web", config: { git, buildCommand: "npm run build:prod" } });
    await api().services.create({ environmentId: production.id, name: "cache", kind: "DATABASE", config: { engine: "redis" } });

    await expect(api().deployments.promote({ fromEnvironmentId: staging.id, toEnvironmentId: production.id })).rejects.toThrow(
      'Environment "staging" has no successful deployment to promote',
    );
    // What the engine reports as staging's deployment succeeds: the commit its clone resolved.
    const { deployment } = await api().deployments.create({ environmentId: staging.id, action: "DEPLOY" });
    await services.db
      .update(deployments)
      .set({ status: "DEPLOYED", commits: { [stagingWeb.id]: COMMIT } })
      .where(eq(deployments.id, deployment.id));

    // What a confirmation shows first: each service and its commit, what is left alone; nothing deployed yet.
    expect(await api().deployments.promotePlan({ fromEnvironmentId: staging.id, toEnvironmentId: production.id })).toEqual({
      from: { id: staging.id, name: "staging" },
      to: { id: production.id, name: "production" },
      sourceDeploymentId: deployment.id,
      services: [{ serviceId: productionWeb.id, name: "web", commit: COMMIT }],
      skipped: ["cache"],
    });
    expect(await api().deployments.list({ environmentId: production.id })).toEqual([]);

    const promoted = await api().deployments.promote({ fromEnvironmentId: staging.id, toEnvironmentId: production.id });
    expect(promoted.deployment).toMatchObject({ environmentId: production.id, action: "DEPLOY", serviceIds: [productionWeb.id] });
    expect(promoted.deployment.trigger).toMatchObject({ kind: "promote", fromEnvironment: "staging", fromDeploymentId: deployment.id });
    const [row] = await services.db.select().from(deployments).where(eq(deployments.id, promoted.deployment.id));
    const [spec] = row!.snapshot.services;
    expect(spec).toMatchObject({ id: productionWeb.id, config: { git: { ref: { commit: COMMIT } }, buildCommand: "npm run build:prod" } });

    await expect(api().deployments.promote({ fromEnvironmentId: staging.id, toEnvironmentId: staging.id })).rejects.toThrow("cannot be promoted into itself");
    const other = await api().projects.create({ name: "other" });
    const elsewhere = await api().environments.create({ projectId: other.id, name: "prod" });
    await expect(api().deployments.promote({ fromEnvironmentId: staging.id, toEnvironmentId: elsewhere.id })).rejects.toThrow("in different projects");
  });
});
