import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { deployments, services as servicesTable } from "../db/schema";
import { appendEngineEvents } from "../deployments/events";

let api: ReturnType<typeof createCaller>;
let services: Services;
let org: SeededOrganization;
let ids: { projectId: string; environmentId: string; serviceId: string };

beforeAll(async () => {
  services = testServices((await createTestDatabase()).db);
  org = await seedOrganization(services, "vars");
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
    expect(byKey.LOG_LEVEL).toEqual({ key: "LOG_LEVEL", value: "debug", secret: false, source: "ENVIRONMENT", overrides: ["PROJECT"], job: null });
    expect(byKey.REGION).toMatchObject({ value: "eu", source: "PROJECT" });
    expect(byKey.DB_PASSWORD).toEqual({ key: "DB_PASSWORD", value: null, secret: true, source: "SERVICE", overrides: [], job: null });
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

  it("refuses an import with a value over the limit of a single value, naming its key and line, and writes nothing", async () => {
    const big = "a".repeat(200 * 1024);
    // Accepted, a value this long would fail every start of the service (a process takes no environment string over 128 KiB).
    await expect(api.variables.set({ scope: "ENVIRONMENT", targetId: ids.environmentId, key: "BIG", value: big })).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
    const content = `# generated\nSMALL=1\nBIG="${big}"\n`;
    await expect(api.variables.import({ scope: "ENVIRONMENT", targetId: ids.environmentId, content })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: `Nothing imported. Invalid lines: line 3, BIG: the value has ${big.length} characters: Too big: expected string to have <=65536 characters`,
    });
    const keys = (await api.variables.list({ scope: "ENVIRONMENT", targetId: ids.environmentId })).map((v) => v.key);
    expect(keys).not.toContain("SMALL");
    expect(keys).not.toContain("BIG");
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
    expect(await api.organization.mine({})).toEqual([{ organizationId: expect.any(String), name: "vars", role: "OWNER", deletingAt: null }]);
  });

  it("refuses to overwrite a key set at the same scope unless asked, and audits an overwrite as an update", async () => {
    const target = { scope: "ENVIRONMENT" as const, targetId: ids.environmentId };
    await api.variables.set({ ...target, key: "FEATURE_FLAG", value: "off", overwrite: false });
    await expect(api.variables.set({ ...target, key: "FEATURE_FLAG", value: "on", overwrite: false })).rejects.toMatchObject({
      code: "CONFLICT",
      message: "FEATURE_FLAG is already set on this environment: overwrite it, or choose another key",
    });
    const kept = await api.variables.list(target);
    expect(kept.find((v) => v.key === "FEATURE_FLAG")?.value).toBe("off");
    // The same key at another scope is another variable: no conflict.
    await api.variables.set({ scope: "SERVICE", targetId: ids.serviceId, key: "FEATURE_FLAG", value: "beta", overwrite: false });
    // Asked (or as a plain PUT, which overwrites by default), the value is replaced.
    await api.variables.set({ ...target, key: "FEATURE_FLAG", value: "on", overwrite: true });
    expect((await api.variables.list(target)).find((v) => v.key === "FEATURE_FLAG")?.value).toBe("on");
    const audit = await createCaller({ services, actor: org.as("ADMIN") }).organization.audit({ action: "variable.update" });
    expect(audit.map((entry) => entry.changes)).toContainEqual(expect.objectContaining({ key: "FEATURE_FLAG", value: "on", scope: "ENVIRONMENT" }));
  });

  it("lists what lifecycle jobs output with the environment's variables and a service's effective ones, naming the job, never a value", async () => {
    const jobConfig = (command: string) => ({ git: { url: "file:///srv/jobs.git" }, command, trigger: { type: "lifecycle" as const, on: ["start" as const] } });
    const seed = await api.services.create({ environmentId: ids.environmentId, name: "seed", kind: "JOB", config: jobConfig("sh seed.sh") });
    const migrate = await api.services.create({ environmentId: ids.environmentId, name: "migrate", kind: "JOB", config: jobConfig("sh migrate.sh") });
    await api.variables.set({ scope: "SERVICE", targetId: ids.serviceId, key: "GREETING", value: "set by hand" });
    // What the engine reports of a deployment's job runs (engine/orchestrator.ts): the keys each run output.
    const ran = async (runs: { serviceId: string; keys: string[]; at: string }[]) => {
      const { deployment } = await api.deployments.create({ environmentId: ids.environmentId, action: "DEPLOY" });
      const [row] = await services.db.select().from(deployments).where(eq(deployments.id, deployment.id));
      await appendEngineEvents(
        services.db,
        services,
        row!,
        runs.map((run, seq) => ({ seq, serviceId: run.serviceId, step: "run" as const, status: "succeeded" as const, at: run.at, outputKeys: run.keys })),
      );
      // Ended, so that the next request is a deployment of its own.
      await services.db.update(deployments).set({ status: "DEPLOYED" }).where(eq(deployments.id, deployment.id));
    };
    await ran([
      { serviceId: seed.id, keys: ["GREETING", "SEED_ROWS"], at: "2026-12-01T10:00:00.000Z" },
      { serviceId: migrate.id, keys: ["SCHEMA_VERSION", "SEED_ROWS"], at: "2026-12-01T10:01:00.000Z" },
    ]);
    // A later run of the seed replaces its earlier outputs: SEED_ROWS is now the seed's again, GREETING is gone.
    await ran([{ serviceId: seed.id, keys: ["SEED_ROWS", "ADMIN_TOKEN"], at: "2026-12-02T10:00:00.000Z" }]);

    const listed = await api.variables.list({ scope: "ENVIRONMENT", targetId: ids.environmentId });
    const fromJobs = listed.filter((v) => v.job).map((v) => [v.key, v.job!.name, v.value]);
    expect(fromJobs).toEqual([
      ["ADMIN_TOKEN", "seed", null],
      ["SCHEMA_VERSION", "migrate", null],
      ["SEED_ROWS", "seed", null],
    ]);
    expect(listed.find((v) => v.key === "FEATURE_FLAG")).toMatchObject({ job: null, value: "on" });
    // A service's list has them too (they reach it), beside what is set on it; a project's has none.
    const ofService = await api.variables.list({ scope: "SERVICE", targetId: ids.serviceId });
    expect(ofService.filter((v) => v.job || v.key === "GREETING").map((v) => [v.key, v.job?.name ?? null, v.scope, v.value])).toEqual([
      ["GREETING", null, "SERVICE", "set by hand"],
      ["ADMIN_TOKEN", "seed", "SERVICE", null],
      ["SCHEMA_VERSION", "migrate", "SERVICE", null],
      ["SEED_ROWS", "seed", "SERVICE", null],
    ]);
    expect((await api.variables.list({ scope: "PROJECT", targetId: ids.projectId })).some((v) => v.job)).toBe(false);

    const effective = Object.fromEntries((await api.variables.effective({ serviceId: ids.serviceId })).map((v) => [v.key, v]));
    expect(effective.ADMIN_TOKEN).toEqual({
      key: "ADMIN_TOKEN",
      value: null,
      secret: false,
      source: "JOB",
      overrides: [],
      job: { serviceId: seed.id, name: "seed" },
    });
    expect(effective.GREETING).toMatchObject({ value: "set by hand", source: "SERVICE", job: null });
    expect(effective.SCHEMA_VERSION).toMatchObject({ source: "JOB", job: { name: "migrate" } });

    // A deleted job's outputs are gone with it, as the engine forgets them.
    await services.db.delete(servicesTable).where(eq(servicesTable.id, migrate.id));
    expect((await api.variables.list({ scope: "ENVIRONMENT", targetId: ids.environmentId })).filter((v) => v.job).map((v) => v.key)).toEqual([
      "ADMIN_TOKEN",
      "SEED_ROWS",
    ]);
  });
});
