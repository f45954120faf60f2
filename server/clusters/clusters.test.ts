import { and, eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { auditEvents, clusters, deployments } from "../db/schema";
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
      message: "Nothing to change: give allowLocalRepositories, trusted, isolateLoopback or kubernetesBuild",
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

describe("where a kubernetes cluster builds images", () => {
  it("is in the cluster unless an ADMIN says the engine's host, with a Docker API; validated, audited, refused on other kinds", async () => {
    const { cluster } = await as("ADMIN").clusters.create({ name: "k8s-builds", kind: "kubernetes" });
    expect(cluster.kubernetesBuild).toEqual({ location: "cluster" });
    const hostBuild = { location: "engine-host" as const, dockerHost: "unix:///var/run/docker.sock" };
    await expect(as("DEVELOPER").clusters.update({ clusterId: cluster.id, kubernetesBuild: hostBuild })).rejects.toMatchObject({ code: "FORBIDDEN" });
    await expect(
      as("ADMIN").clusters.update({ clusterId: cluster.id, kubernetesBuild: { location: "engine-host", dockerHost: "/var/run/docker.sock" } }),
    ).rejects.toThrow("give the Docker API as unix:///path/to/docker.sock or tcp://host:port");
    await expect(as("ADMIN").clusters.update({ clusterId: cluster.id, kubernetesBuild: { location: "engine-host" } as never })).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });

    expect(await as("ADMIN").clusters.update({ clusterId: cluster.id, kubernetesBuild: hostBuild })).toMatchObject({ kubernetesBuild: hostBuild });
    const audit = await services.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.action, "cluster.update"), eq(auditEvents.targetId, cluster.id)));
    expect(audit.map((event) => event.changes)).toEqual([{ before: { kubernetesBuild: null }, after: { kubernetesBuild: hostBuild } }]);

    const { cluster: created } = await as("ADMIN").clusters.create({
      name: "k8s-host",
      kind: "kubernetes",
      kubernetesBuild: { location: "engine-host", dockerHost: "tcp://10.0.0.5:2375" },
    });
    expect(created.kubernetesBuild).toEqual({ location: "engine-host", dockerHost: "tcp://10.0.0.5:2375" });

    const { cluster: docker } = await as("ADMIN").clusters.create({ name: "containers", kind: "docker" });
    expect(docker.kubernetesBuild).toBeNull();
    await expect(as("ADMIN").clusters.update({ clusterId: docker.id, kubernetesBuild: hostBuild })).rejects.toThrow(
      "kubernetesBuild is a setting of kubernetes clusters; a docker cluster builds on its engine's host",
    );
    await expect(as("ADMIN").clusters.create({ name: "local-2", kind: "local", kubernetesBuild: { location: "cluster" } })).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
  });

  it("reaches the engine with each task", async () => {
    const { cluster } = await as("ADMIN").clusters.create({ name: "k8s-tasks", kind: "kubernetes" });
    const project = await as("ADMIN").projects.create({ name: "builds" });
    const environment = await as("ADMIN").environments.create({ projectId: project.id, name: "dev", clusterId: cluster.id });
    await as("DEVELOPER").services.create({ environmentId: environment.id, name: "web", config: { git: { url: "https://example.com/acme/web.git" } } });
    const { deployment } = await as("DEVELOPER").deployments.create({ environmentId: environment.id, action: "DEPLOY" });
    await services.db.update(deployments).set({ leasedAt: new Date(), attempt: 1 }).where(eq(deployments.id, deployment.id));
    expect((await pullTask(services, cluster.id))?.kubernetesBuild).toBeUndefined();
    const hostBuild = { location: "engine-host" as const, dockerHost: "unix:///run/podman/podman.sock" };
    await as("ADMIN").clusters.update({ clusterId: cluster.id, kubernetesBuild: hostBuild });
    expect(await pullTask(services, cluster.id)).toMatchObject({ deploymentId: deployment.id, kubernetesBuild: hostBuild });
  });
});

describe("a cluster's domain suffix", () => {
  // A hostname may have 253 characters, its first label 63: the suffix, after that label's dot, 189.
  const suffixOf = (length: number) => `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(length - 132)}.com`;

  it("has at most 189 characters, so that a hostname with a 63-character first label fits DNS's 253", async () => {
    expect([suffixOf(189).length, suffixOf(190).length]).toEqual([189, 190]);
    await expect(as("ADMIN").clusters.create({ name: "long-suffix", domainSuffix: suffixOf(190) })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: expect.stringContaining(
        "use at most 189 characters: a hostname, <service>-<env>-<project>.<domainSuffix>, may have 253, and its first label 63",
      ),
    });
    expect((await as("ADMIN").clusters.list({})).map((listed) => listed.name)).not.toContain("long-suffix");
    const { cluster } = await as("ADMIN").clusters.create({ name: "long-suffix", domainSuffix: suffixOf(189) });
    expect(cluster.domainSuffix).toBe(suffixOf(189));
  });

  it("is refused a label of more than 63 characters, or characters DNS does not allow, saying which", async () => {
    // 100 characters in all, far under 189: the total alone let it through.
    const longLabel = `${"x".repeat(64)}.example.com`;
    expect(longLabel.length).toBeLessThan(189);
    await expect(as("ADMIN").clusters.create({ name: "long-label", domainSuffix: longLabel })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: expect.stringContaining(`use a DNS name: its label ${"x".repeat(20)}… has 64 characters, and a DNS label may have at most 63`),
    });
    for (const domainSuffix of ["apps_example.com", "apps..example.com", "Apps.example.com", "apps.example.com."]) {
      await expect(as("ADMIN").clusters.create({ name: "bad-suffix", domainSuffix })).rejects.toMatchObject({
        code: "BAD_REQUEST",
        message: expect.stringContaining("use a DNS name: lowercase letters, digits, hyphens and dots, such as apps.example.com"),
      });
    }
    const names = (await as("ADMIN").clusters.list({})).map((listed) => listed.name);
    expect(names).not.toContain("long-label");
    expect(names).not.toContain("bad-suffix");
    const { cluster } = await as("ADMIN").clusters.create({ name: "long-label", domainSuffix: `${"x".repeat(63)}.example.com` });
    expect(cluster.domainSuffix).toBe(`${"x".repeat(63)}.example.com`);
  });

  it("saved longer before keeps working: listed, and its services created and deployed", async () => {
    // As a release that took 200 characters saved it.
    const [legacy] = await services.db
      .insert(clusters)
      .values({ organizationId: org.organizationId, name: "legacy-suffix", kind: "local", domainSuffix: suffixOf(200) })
      .returning();
    expect((await as("VIEWER").clusters.list({})).find((listed) => listed.id === legacy!.id)).toMatchObject({ domainSuffix: suffixOf(200) });
    const project = await as("ADMIN").projects.create({ name: "legacy" });
    const environment = await as("ADMIN").environments.create({ projectId: project.id, name: "dev", clusterId: legacy!.id });
    await as("DEVELOPER").services.create({ environmentId: environment.id, name: "web", config: { git: { url: "https://example.com/acme/web.git" } } });
    const { deployment } = await as("DEVELOPER").deployments.create({ environmentId: environment.id, action: "DEPLOY" });
    const [row] = await services.db.select().from(deployments).where(eq(deployments.id, deployment.id));
    expect(row!.snapshot.cluster.domainSuffix).toBe(suffixOf(200));
  });
});
