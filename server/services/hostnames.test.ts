/**
 * Generated hostnames (`<service>-<environment>-<project>.<cluster domain>`) on a real
 * PostgreSQL: names joined by hyphens can meet (`api-v2` in `prod`, `api` in `v2-prod`), and the
 * router would then send one service's requests to the other. Every way a service comes to be
 * (created, cloned, a pull request's preview, two creations at once) is refused a hostname
 * another service of the cluster has; hostnames services have today are kept, colliding or not.
 */
import { randomUUID } from "node:crypto";
import { eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { applicationConfig } from "../../engine/protocol/snapshot";
import { createTestDatabase } from "../../test/database";
import { eventually } from "../../test/engine-harness";
import { seedOrganization, testServices } from "../../test/support/seed";
import { openedPullRequest } from "../../test/support/webhooks";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { applyMigrations } from "../db/migrate";
import { issueToken } from "../auth/tokens";
import { clusters, environments, gitConnections, serviceHostnames, services as servicesTable } from "../db/schema";
import { createOrganization } from "../organizations/create-organization";
import { loadCandidates } from "../webhooks/candidates";
import { onPullRequest } from "../webhooks/previews";
import { serviceDomain } from "./domains";

const git = { url: "https://github.com/acme/shop.git", ref: { branch: "main" } };
/** As a service's config is stored (a row written directly, as an older release or a concurrent request would). */
const stored = applicationConfig.parse({ git });

async function platform(name: string, database?: Awaited<ReturnType<typeof createTestDatabase>>) {
  const services: Services = testServices((database ?? (await createTestDatabase())).db);
  const org = await seedOrganization(services, name);
  const api = createCaller({ services, actor: org.as("DEVELOPER") });
  const admin = createCaller({ services, actor: org.as("ADMIN") });
  return { services, org, api, admin };
}

/**
 * An organization and its cluster on an older schema, with an OWNER acting in it: no user row
 * (the tables of accounts changed since), which nothing a project, an environment or a service
 * is made with reads.
 */
async function legacyPlatform(name: string, database: Awaited<ReturnType<typeof createTestDatabase>>) {
  const services: Services = testServices(database.db);
  const organization = await createOrganization(services.db, services.keyring, { name });
  const [cluster] = await services.db
    .insert(clusters)
    .values({ organizationId: organization.id, name: "local", kind: "local", domainSuffix: "localhost", engineTokenHash: issueToken("engine").hash })
    .returning({ id: clusters.id });
  const actor = { type: "user" as const, id: randomUUID(), label: name, organizationId: organization.id, role: "OWNER" as const, origin: "API" as const };
  return { services, api: createCaller({ services, actor }), org: { organizationId: organization.id, clusterId: cluster!.id } };
}

describe("generated hostnames", () => {
  it("refuses a service the hostname another service of the cluster has, naming it; another cluster may have it", async () => {
    const { api, admin } = await platform("hostnames-create");
    const project = await api.projects.create({ name: "x" });
    const prod = await api.environments.create({ projectId: project.id, name: "prod" });
    const v2prod = await api.environments.create({ projectId: project.id, name: "v2-prod" });
    await api.services.create({ environmentId: prod.id, name: "api-v2", config: { git } });

    await expect(api.services.create({ environmentId: v2prod.id, name: "api", config: { git } })).rejects.toMatchObject({
      code: "CONFLICT",
      message:
        'Service "api" would be served at api-v2-prod-x.localhost, the hostname of service "api-v2" in environment "prod" of project "x" on the same cluster: choose another name for the service',
    });
    expect(await api.services.list({ environmentId: v2prod.id })).toEqual([]);
    // A database has the hostname too (its built-in variables name it): refused the same.
    await expect(api.services.create({ environmentId: v2prod.id, name: "api", kind: "DATABASE", config: { engine: "postgresql" } })).rejects.toMatchObject({
      code: "CONFLICT",
    });
    // The same name twice in one environment is still said as such.
    await expect(api.services.create({ environmentId: prod.id, name: "api-v2", config: { git } })).rejects.toThrow(
      'Service "api-v2" in environment "prod" already exists',
    );
    await api.services.create({ environmentId: v2prod.id, name: "web", config: { git } });

    // Another cluster's router is another router: the same hostname there is no collision.
    const { cluster } = await admin.clusters.create({ name: "eu", domainSuffix: "localhost" });
    const other = await api.projects.create({ name: "y" });
    const here = await api.environments.create({ projectId: other.id, name: "prod" });
    const there = await api.environments.create({ projectId: other.id, name: "v2-prod", clusterId: cluster.id });
    await api.services.create({ environmentId: here.id, name: "api-v2", config: { git } });
    await api.services.create({ environmentId: there.id, name: "api", config: { git } });
  });

  it("refuses a clone whose copies would take hostnames other services have, creating nothing", async () => {
    const { services, api } = await platform("hostnames-clone");
    const project = await api.projects.create({ name: "x" });
    const prod = await api.environments.create({ projectId: project.id, name: "prod" });
    const staging = await api.environments.create({ projectId: project.id, name: "staging" });
    await api.services.create({ environmentId: prod.id, name: "api-v2", config: { git } });
    await api.services.create({ environmentId: staging.id, name: "web", config: { git } });
    await api.services.create({ environmentId: staging.id, name: "api", config: { git } });

    await expect(api.environments.clone({ environmentId: staging.id, name: "v2-prod" })).rejects.toMatchObject({
      code: "CONFLICT",
      message:
        'Service "api" would be served at api-v2-prod-x.localhost, the hostname of service "api-v2" in environment "prod" of project "x" on the same cluster: choose another name for the copy',
    });
    expect((await services.db.select().from(environments).where(eq(environments.name, "v2-prod"))).length).toBe(0);
    // Without the colliding service the copy is made, and reserves its hostnames.
    const { environment } = await api.environments.clone({ environmentId: staging.id, name: "v2-prod", services: ["web"] });
    const reserved = await services.db
      .select({ label: serviceHostnames.label })
      .from(serviceHostnames)
      .innerJoin(servicesTable, eq(servicesTable.id, serviceHostnames.serviceId))
      .where(eq(servicesTable.environmentId, environment.id));
    expect(reserved.map((row) => `${row.label}.localhost`)).toEqual([serviceDomain("web", "v2-prod", "x", "localhost")]);
    // A name the project has already is still said as such.
    await expect(api.environments.clone({ environmentId: staging.id, name: "prod" })).rejects.toThrow('Environment "prod" in project "x" already exists');
  });

  it("settles two creations at once: the one that commits second is refused, naming the first", async () => {
    const { services, api, org } = await platform("hostnames-race");
    const project = await api.projects.create({ name: "x" });
    const prod = await api.environments.create({ projectId: project.id, name: "prod" });
    const v2prod = await api.environments.create({ projectId: project.id, name: "v2-prod" });
    // Another creation holds its transaction open past the check of this one (as a request
    // arriving at the same moment on another web process would): its rows are not visible yet.
    let commit!: () => void;
    const held = new Promise<void>((resolve) => (commit = resolve));
    let inserted!: () => void;
    const insertedYet = new Promise<void>((resolve) => (inserted = resolve));
    const other = services.db.transaction(async (tx) => {
      const [service] = await tx
        .insert(servicesTable)
        .values({ organizationId: org.organizationId, environmentId: prod.id, name: "api-v2", kind: "APPLICATION", config: stored })
        .returning();
      await tx.insert(serviceHostnames).values({ serviceId: service!.id, clusterId: org.clusterId, label: "api-v2-prod-x" });
      inserted();
      await held;
    });
    await insertedYet;
    const mine = api.services.create({ environmentId: v2prod.id, name: "api", config: { git } });
    const refused = expect(mine).rejects;
    // Past its check (the other's rows are not visible to it), this creation waits on the unique
    // index for the other transaction's outcome.
    try {
      await eventually(
        async () =>
          (await services.db.execute(sql`select 1 from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`)).rows.length > 0,
        10_000,
        "the second creation to wait on the hostname's unique index",
      );
    } finally {
      commit();
      await other;
    }
    await refused.toMatchObject({ code: "CONFLICT", message: expect.stringContaining('the hostname of service "api-v2" in environment "prod"') });
    expect(await api.services.list({ environmentId: v2prod.id })).toEqual([]);
  });

  it("gives a pull request's preview the next name when its first one would take another service's hostname", async () => {
    const { services, api, admin, org } = await platform("hostnames-preview");
    const project = await api.projects.create({ name: "shop" });
    const dev = await api.environments.create({ projectId: project.id, name: "dev" });
    await api.services.create({ environmentId: dev.id, name: "web", config: { git } });
    await api.git.setPreviewBlueprint({ environmentId: dev.id, enabled: true });
    // `web` in `pr-7` of `shop` would be web-pr-7-shop.localhost: this service's.
    const seven = await api.environments.create({ projectId: project.id, name: "7" });
    await api.services.create({ environmentId: seven.id, name: "web-pr", config: { git } });

    const { connection } = await admin.git.connect({ provider: "generic", name: "generic" });
    const [row] = await services.db.select().from(gitConnections).where(eq(gitConnections.id, connection.id));
    const outcome = await onPullRequest(services, row!, openedPullRequest(git.url, 7), await loadCandidates(services.db, org.organizationId));
    expect(outcome.previews.map((preview) => ({ name: preview.name, created: preview.created }))).toEqual([{ name: "pr-7-dev", created: true }]);
    const previewServices = await api.services.list({ environmentId: outcome.previews[0]!.environmentId });
    expect(previewServices.map((service) => service.name)).toEqual(["web"]);
  });

  it("keeps the hostnames services already share when the table is made, and refuses them to new services", async () => {
    const database = await createTestDatabase({ empty: true });
    // The schema before migration 0031. Only what the services' rows need is made on it: the code
    // writes today's schema, which later migrations change (a user row gained a column since).
    await applyMigrations(database, 31);
    const { services, api, org } = await legacyPlatform("hostnames-migration", database);
    const project = await api.projects.create({ name: "x" });
    const environmentNamed = async (name: string) => (await api.environments.create({ projectId: project.id, name })).id;
    const [d, cd, bcd] = [await environmentNamed("d"), await environmentNamed("c-d"), await environmentNamed("b-c-d")];
    // Made before hostnames were checked: both are a-b-c-d-x.localhost.
    const insert = async (environmentId: string, name: string, createdAt: Date) =>
      (
        await services.db
          .insert(servicesTable)
          .values({ organizationId: org.organizationId, environmentId, name, kind: "APPLICATION", config: stored, createdAt })
          .returning()
      )[0]!;
    const older = await insert(d, "a-b-c", new Date("2025-01-01T00:00:00Z"));
    const newer = await insert(cd, "a-b", new Date("2025-02-01T00:00:00Z"));
    const alone = await insert(d, "web", new Date("2025-03-01T00:00:00Z"));

    await applyMigrations(database);
    const rows = await services.db.select().from(serviceHostnames);
    expect(rows.map((r) => [r.serviceId, r.label]).sort()).toEqual(
      [
        [older.id, "a-b-c-d-x"],
        [alone.id, "web-d-x"],
      ].sort(),
    );
    expect(rows.every((r) => r.clusterId === org.clusterId)).toBe(true);
    // Both keep serving; a third is refused the hostname, even once the older is gone.
    expect((await api.services.list({ environmentId: cd })).map((s) => s.name)).toEqual(["a-b"]);
    await expect(api.services.create({ environmentId: bcd, name: "a", config: { git } })).rejects.toThrow('the hostname of service "a-b-c" in environment "d"');
    await services.db.delete(servicesTable).where(eq(servicesTable.id, older.id));
    await expect(api.services.create({ environmentId: bcd, name: "a", config: { git } })).rejects.toThrow(`the hostname of service "a-b" in environment "c-d"`);
    expect(newer.name).toBe("a-b");
  });
});
