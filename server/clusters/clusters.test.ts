import { and, eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { auditEvents, deployments } from "../db/schema";
import { pullTask } from "../engines/engine-session";

let services: Services;
let org: SeededOrganization;

beforeAll(async () => {
  services = testServices((await createTestDatabase()).db);
  org = await seedOrganization(services, "cluster-settings");
});

const as = (role: "VIEWER" | "DEVELOPER" | "ADMIN") => createCaller({ services, actor: org.as(role) });

describe("a cluster's trust and loopback isolation", () => {
  it("are an ADMIN's audited choice, off by default, refused to a DEVELOPER, and a change of nothing is refused", async () => {
    const { cluster } = await as("ADMIN").clusters.create({ name: "edge", kind: "local" });
    expect(cluster).toMatchObject({ trusted: false, isolateLoopback: false });
    await expect(as("DEVELOPER").clusters.update({ clusterId: cluster.id, trusted: true })).rejects.toMatchObject({ code: "FORBIDDEN" });
    await expect(as("ADMIN").clusters.update({ clusterId: cluster.id })).rejects.toMatchObject({
      message: "Nothing to change: give allowLocalRepositories, trusted or isolateLoopback",
    });

    expect(await as("ADMIN").clusters.update({ clusterId: cluster.id, trusted: true, isolateLoopback: true })).toMatchObject({
      trusted: true,
      isolateLoopback: true,
      allowLocalRepositories: false,
    });
    const audit = await services.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.action, "cluster.update"), eq(auditEvents.targetId, cluster.id)));
    expect(audit.map((event) => event.changes)).toEqual([
      { before: { trusted: false, isolateLoopback: false }, after: { trusted: true, isolateLoopback: true } },
    ]);
    // Everyone may see it: it says what the cluster's apps can do.
    expect((await as("VIEWER").clusters.list({})).find((listed) => listed.id === cluster.id)).toMatchObject({ trusted: true, isolateLoopback: true });
  });

  it("reach the engine with each task, as they are when it is pulled", async () => {
    const project = await as("ADMIN").projects.create({ name: "trust" });
    const environment = await as("ADMIN").environments.create({ projectId: project.id, name: "dev" });
    await as("DEVELOPER").services.create({ environmentId: environment.id, name: "web", config: { git: { url: "https://example.com/acme/web.git" } } });
    const { deployment } = await as("DEVELOPER").deployments.create({ environmentId: environment.id, action: "DEPLOY" });
    await services.db.update(deployments).set({ leasedAt: new Date(), attempt: 1 }).where(eq(deployments.id, deployment.id));
    const [row] = await services.db.select().from(deployments).where(eq(deployments.id, deployment.id));
    expect((await pullTask(services, row!.clusterId))?.trusted).toBe(false);
    await as("ADMIN").clusters.update({ clusterId: row!.clusterId, trusted: true });
    expect(await pullTask(services, row!.clusterId)).toMatchObject({ deploymentId: deployment.id, trusted: true, isolateLoopback: false });
  });
});
