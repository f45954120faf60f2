import { beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices } from "../../test/support/seed";
import { createCaller } from "../api/root";

let api: ReturnType<typeof createCaller>;
let ids: { projectId: string; environmentId: string; serviceId: string };

beforeAll(async () => {
  const services = testServices((await createTestDatabase()).db);
  const org = await seedOrganization(services, "vars");
  api = createCaller({ services, actor: org.as("DEVELOPER") });
  const project = await api.projects.create({ name: "shop" });
  const environment = await api.environments.create({ projectId: project.id, name: "dev" });
  const service = await api.services.create({ environmentId: environment.id, name: "web", config: { git: { url: "file:///srv/app.git" } } });
  ids = { projectId: project.id, environmentId: environment.id, serviceId: service.id };
});

describe("variables", () => {
  it("shows the effective set of a service with each value's source, the narrowest scope winning", async () => {
    await api.variables.set({ scope: "PROJECT", targetId: ids.projectId, key: "LOG_LEVEL", value: "info" });
    await api.variables.set({ scope: "ENVIRONMENT", targetId: ids.environmentId, key: "LOG_LEVEL", value: "debug" });
    await api.variables.set({ scope: "PROJECT", targetId: ids.projectId, key: "REGION", value: "eu" });
    await api.variables.set({ scope: "SERVICE", targetId: ids.serviceId, key: "DB_PASSWORD", value: "pw-123", secret: true });
    const effective = await api.variables.effective({ serviceId: ids.serviceId });
    const byKey = Object.fromEntries(effective.map((v) => [v.key, v]));
    expect(byKey.LOG_LEVEL).toEqual({ key: "LOG_LEVEL", value: "debug", secret: false, source: "ENVIRONMENT", overrides: ["PROJECT"] });
    expect(byKey.REGION).toMatchObject({ value: "eu", source: "PROJECT" });
    expect(byKey.DB_PASSWORD).toEqual({ key: "DB_PASSWORD", value: null, secret: true, source: "SERVICE", overrides: [] });
    expect(byKey.SLIPWAY_SERVICE_DOMAIN).toMatchObject({ value: "web-dev-shop.localhost", source: "BUILT_IN" });
    expect(JSON.stringify(effective)).not.toContain("pw-123");
  });

  it("imports a .env file all or nothing, naming every invalid line", async () => {
    const content = '# settings\nexport API_URL=https://api.example.test\nGREETING="hello world"\nMULTI="a\\nb"\n';
    expect(await api.variables.import({ scope: "ENVIRONMENT", targetId: ids.environmentId, content })).toEqual({
      imported: 3,
      keys: ["API_URL", "GREETING", "MULTI"],
    });
    const listed = await api.variables.list({ scope: "ENVIRONMENT", targetId: ids.environmentId });
    expect(listed.find((v) => v.key === "GREETING")?.value).toBe("hello world");
    expect(listed.find((v) => v.key === "MULTI")?.value).toBe("a\nb");

    await expect(
      api.variables.import({ scope: "ENVIRONMENT", targetId: ids.environmentId, content: "OK_NAME=1\n1BAD=2\nSLIPWAY_X=3\n" }),
    ).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: expect.stringMatching(/Nothing imported.*1BAD.*SLIPWAY_X/),
    });
    expect((await api.variables.list({ scope: "ENVIRONMENT", targetId: ids.environmentId })).map((v) => v.key)).not.toContain("OK_NAME");
    await expect(api.variables.import({ scope: "SERVICE", targetId: ids.serviceId, content: "DB_PASSWORD=plain" })).rejects.toMatchObject({ code: "CONFLICT" });
    await expect(api.variables.import({ scope: "SERVICE", targetId: ids.serviceId, content: "\n# nothing\n" })).rejects.toMatchObject({ code: "BAD_REQUEST" });
    const secrets = await api.variables.import({ scope: "SERVICE", targetId: ids.serviceId, content: "DB_PASSWORD=rotated\nTOKEN=t", secret: true });
    expect(secrets.imported).toBe(2);
    expect((await api.variables.list({ scope: "SERVICE", targetId: ids.serviceId })).every((v) => v.secret && v.value === null)).toBe(true);
  });

  it("summarises the organization for the overview", async () => {
    const overview = await api.organization.overview({});
    expect(overview.projects).toEqual([
      expect.objectContaining({
        name: "shop",
        environments: [
          expect.objectContaining({
            name: "dev",
            status: "NEVER_DEPLOYED",
            services: [expect.objectContaining({ name: "web", url: null, lastDeployment: null })],
          }),
        ],
      }),
    ]);
    const { deployment } = await api.deployments.create({ environmentId: ids.environmentId, action: "DEPLOY" });
    const after = await api.organization.overview({});
    expect(after.projects[0]!.environments[0]).toMatchObject({ status: "QUEUED", services: [{ lastDeployment: { id: deployment.id, status: "QUEUED" } }] });
    expect(await api.organization.mine({})).toEqual([{ organizationId: expect.any(String), name: "vars", role: "OWNER" }]);
  });
});
