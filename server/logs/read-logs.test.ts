import { beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices } from "../../test/support/seed";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { recordLogBatch } from "../engines/engine-session";

let services: Services;
let org: Awaited<ReturnType<typeof seedOrganization>>;

beforeAll(async () => {
  services = testServices((await createTestDatabase()).db);
  org = await seedOrganization(services, "logs");
});

describe("reading logs", () => {
  it("resumes after a sequence number, filters a deployment's output by service, greps, and tails", async () => {
    const api = createCaller({ services, actor: org.as("VIEWER") });
    const dev = createCaller({ services, actor: org.as("DEVELOPER") });
    const project = await dev.projects.create({ name: "logs" });
    const environment = await dev.environments.create({ projectId: project.id, name: "dev" });
    const config = { git: { url: "file:///srv/app.git" } };
    const web = await dev.services.create({ environmentId: environment.id, name: "web", config });
    const api2 = await dev.services.create({ environmentId: environment.id, name: "api", config });
    const { deployment } = await dev.deployments.create({ environmentId: environment.id, action: "DEPLOY" });
    const at = new Date().toISOString();
    const line = (seq: number, text: string) => ({ seq, at, fd: "stdout" as const, text });
    await recordLogBatch(services, org.clusterId, { kind: "deployment", deploymentId: deployment.id, serviceId: web.id }, [
      line(1, "web: npm ci"),
      line(3, "web: 100% done"),
    ]);
    await recordLogBatch(services, org.clusterId, { kind: "deployment", deploymentId: deployment.id, serviceId: api2.id }, [line(2, "api: npm ci")]);
    // A re-sent batch is stored once.
    await recordLogBatch(services, org.clusterId, { kind: "deployment", deploymentId: deployment.id, serviceId: api2.id }, [line(2, "api: npm ci")]);

    const all = await api.deployments.logs({ deploymentId: deployment.id });
    expect(all.map((l) => l.seq)).toEqual([1, 2, 3]);
    expect((await api.deployments.logs({ deploymentId: deployment.id, after: 2 })).map((l) => l.text)).toEqual(["web: 100% done"]);
    expect((await api.deployments.logs({ deploymentId: deployment.id, serviceId: web.id })).map((l) => l.seq)).toEqual([1, 3]);
    expect((await api.deployments.logs({ deploymentId: deployment.id, grep: "100%" })).map((l) => l.seq)).toEqual([3]);
    expect((await api.deployments.logs({ deploymentId: deployment.id, grep: "%" })).map((l) => l.seq)).toEqual([3]);
    expect((await api.deployments.logs({ deploymentId: deployment.id, tail: 2 })).map((l) => l.seq)).toEqual([2, 3]);
    await expect(api.deployments.logs({})).rejects.toMatchObject({ code: "BAD_REQUEST" });
  });
});
