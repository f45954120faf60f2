import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import type { DatabaseConfig } from "../../engine/protocol/snapshot";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { clusters, deployments, services as servicesTable } from "../db/schema";
import { pullTask } from "../engines/engine-session";
import { allocateDatabasePort, PORT_RANGE } from "./databases";

let services: Services;
let org: SeededOrganization;

beforeAll(async () => {
  services = testServices((await createTestDatabase()).db);
  org = await seedOrganization(services, "databases");
});

const api = () => createCaller({ services, actor: org.as("DEVELOPER") });

async function environmentWithDatabase(projectName: string) {
  const project = await api().projects.create({ name: projectName });
  const environment = await api().environments.create({ projectId: project.id, name: "main" });
  const database = await api().services.create({ environmentId: environment.id, name: "orders-db", kind: "DATABASE", config: { engine: "postgresql" } });
  const web = await api().services.create({ environmentId: environment.id, name: "web", config: { git: { url: "file:///srv/shop.git" } } });
  return { project, environment, database, web };
}

async function storedPassword(serviceId: string) {
  const [row] = await services.db.select().from(servicesTable).where(eq(servicesTable.id, serviceId));
  return (row!.config as DatabaseConfig).connection.password;
}

describe("database services", () => {
  it("finds the last free database port of a cluster, and says clearly when none is left", async () => {
    const ports = Array.from({ length: PORT_RANGE.to - PORT_RANGE.from }, (_, index) => PORT_RANGE.from + index);
    const last = ports[4321]!;
    expect(await allocateDatabasePort(services.db, org.clusterId, new Set(ports.filter((port) => port !== last)))).toBe(last);
    await expect(allocateDatabasePort(services.db, org.clusterId, new Set(ports))).rejects.toMatchObject({
      code: "CONFLICT",
      message: expect.stringMatching(/Every database port of this cluster .* is taken/),
    });
  });

  it("generates the connection, keeps the password sealed and hidden, and hands it only to the engine", async () => {
    const { environment, database, web } = await environmentWithDatabase("shop");
    expect(database.config).toMatchObject({ engine: "postgresql", connection: { user: "orders_db", database: "orders_db", password: "[secret]" } });
    const port = (database.config as DatabaseConfig).connection.port;
    expect(port).toBeGreaterThanOrEqual(20_000);
    expect(port).toBeLessThan(30_000);
    expect(await storedPassword(database.id)).not.toBe("[secret]");

    // Applications see the database's variables; the URL and the password stay hidden.
    const effective = await api().variables.effective({ serviceId: web.id });
    const byKey = Object.fromEntries(effective.map((variable) => [variable.key, variable]));
    expect(byKey.SLIPWAY_ORDERS_DB_HOST).toMatchObject({ value: "127.0.0.1", source: "BUILT_IN", secret: false });
    expect(byKey.SLIPWAY_ORDERS_DB_PORT?.value).toBe(String(port));
    expect(byKey.SLIPWAY_ORDERS_DB_USER?.value).toBe("orders_db");
    expect(byKey.SLIPWAY_ORDERS_DB_DATABASE?.value).toBe("orders_db");
    expect(byKey.SLIPWAY_ORDERS_DB_PASSWORD).toMatchObject({ value: null, secret: true });
    expect(byKey.SLIPWAY_ORDERS_DB_URL).toMatchObject({ value: null, secret: true });

    const { deployment } = await api().deployments.create({ environmentId: environment.id, action: "DEPLOY" });
    const task = await pullTask(services, org.clusterId);
    // Databases first; the engine gets the plaintext password, the same the app's URL carries.
    expect(task!.snapshot.services.map((service) => service.name)).toEqual(["orders-db", "web"]);
    const [databaseSpec, webSpec] = task!.snapshot.services;
    const password = databaseSpec!.kind === "DATABASE" ? databaseSpec!.config.connection.password : "";
    expect(password).toMatch(/^[\w-]{32}$/);
    expect(webSpec!.variables.find((variable) => variable.key === "SLIPWAY_ORDERS_DB_URL")).toEqual({
      key: "SLIPWAY_ORDERS_DB_URL",
      value: `postgresql://orders_db:${password}@127.0.0.1:${port}/orders_db`,
      secret: true,
    });
    expect(databaseSpec!.domains).toEqual([]);
    const [stored] = await services.db.select().from(deployments).where(eq(deployments.id, deployment.id));
    expect(JSON.stringify(stored!.snapshot)).not.toContain(password);
    const audit = await createCaller({ services, actor: org.as("ADMIN") }).organization.audit({ limit: 50 });
    expect(JSON.stringify(audit)).not.toContain(password);
  });

  it("on a kubernetes cluster, services reach a database at its Service's name in their namespace", async () => {
    const { web } = await environmentWithDatabase("k8s-shop");
    await services.db.update(clusters).set({ kind: "kubernetes" }).where(eq(clusters.id, org.clusterId));
    try {
      const byKey = Object.fromEntries((await api().variables.effective({ serviceId: web.id })).map((variable) => [variable.key, variable.value]));
      expect(byKey.SLIPWAY_ORDERS_DB_HOST).toBe("orders-db");
    } finally {
      await services.db.update(clusters).set({ kind: "local" }).where(eq(clusters.id, org.clusterId));
    }
  });

  it("refuses changes to a database, and engines the cluster cannot run, with the reason", async () => {
    const { database } = await environmentWithDatabase("fixed");
    await expect(api().services.update({ serviceId: database.id, config: { engine: "redis" } })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: expect.stringMatching(/A database's settings cannot change/),
    });

    await services.db
      .update(clusters)
      .set({ capabilities: { runtime: "local", serviceKinds: ["APPLICATION", "DATABASE", "JOB"], databases: ["postgresql"] } })
      .where(eq(clusters.id, org.clusterId));
    const project = await api().projects.create({ name: "cache" });
    const environment = await api().environments.create({ projectId: project.id, name: "main" });
    await expect(api().services.create({ environmentId: environment.id, name: "cache", kind: "DATABASE", config: { engine: "redis" } })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: 'Cluster "local" cannot run redis databases: its engine runs postgresql (install redis-server on the engine\'s host)',
    });
    await expect(
      api().services.create({ environmentId: environment.id, name: "db", kind: "DATABASE", config: { git: { url: "file:///srv/a.git" } } }),
    ).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
    await services.db.update(clusters).set({ capabilities: {} }).where(eq(clusters.id, org.clusterId));
  });

  it("gives a clone its own port and password, and with data, the source to copy from", async () => {
    const { environment, database } = await environmentWithDatabase("cloned");
    const plain = await api().environments.clone({ environmentId: environment.id, name: "feature" });
    const withData = await api().environments.clone({ environmentId: environment.id, name: "feature-data", withData: true });
    for (const [copy, copiesData] of [
      [plain.environment, false],
      [withData.environment, true],
    ] as const) {
      const [copied] = (await api().services.list({ environmentId: copy.id })).filter((service) => service.kind === "DATABASE");
      const config = copied!.config as DatabaseConfig;
      expect(config.connection.port).not.toBe((database.config as DatabaseConfig).connection.port);
      expect(await storedPassword(copied!.id)).not.toBe(await storedPassword(database.id));
      expect(config.copyDataFrom).toEqual(copiesData ? { serviceId: database.id } : undefined);
    }
    const audit = await createCaller({ services, actor: org.as("ADMIN") }).organization.audit({ limit: 50 });
    expect(audit.find((entry) => entry.action === "environment.clone" && entry.targetId === withData.environment.id)?.changes).toMatchObject({
      source: { id: environment.id },
      withData: true,
    });

    // Data lives on the source's cluster: a copy with data elsewhere is refused.
    const [other] = await services.db.insert(clusters).values({ organizationId: org.organizationId, name: "other", kind: "local" }).returning();
    await expect(api().environments.clone({ environmentId: environment.id, name: "away", clusterId: other!.id, withData: true })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: expect.stringMatching(/must run on its source's cluster/),
    });
  });
});

describe("cloning databases", () => {
  it("gives each database of a copy a port of its own, and refuses a cluster that cannot run one of them", async () => {
    const { environment, database } = await environmentWithDatabase("many-databases");
    const cache = await api().services.create({ environmentId: environment.id, name: "cache", kind: "DATABASE", config: { engine: "redis" } });
    const portOf = (service: { config: unknown }) => (service.config as DatabaseConfig).connection.port;
    const { environment: copy } = await api().environments.clone({ environmentId: environment.id, name: "copy" });
    const copied = (await api().services.list({ environmentId: copy.id })).filter((service) => service.kind === "DATABASE");
    expect(copied.map((service) => service.name).sort()).toEqual(["cache", "orders-db"]);
    expect(new Set([portOf(database), portOf(cache), ...copied.map(portOf)]).size).toBe(4);

    const [postgresOnly] = await services.db
      .insert(clusters)
      .values({
        organizationId: org.organizationId,
        name: "postgres-only",
        kind: "local",
        allowLocalRepositories: true,
        capabilities: { runtime: "local", serviceKinds: ["APPLICATION", "DATABASE", "JOB"], databases: ["postgresql"] },
      })
      .returning();
    await expect(api().environments.clone({ environmentId: environment.id, name: "elsewhere", clusterId: postgresOnly!.id })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: expect.stringMatching(/Cluster "postgres-only" cannot run redis databases/),
    });
    expect((await api().environments.list({ projectId: environment.projectId })).map((e) => e.name)).not.toContain("elsewhere");
  });
});

describe("job services", () => {
  it("checks cron schedules and time zones, and updates a job's settings", async () => {
    const project = await api().projects.create({ name: "jobs" });
    const environment = await api().environments.create({ projectId: project.id, name: "main" });
    const git = { url: "file:///srv/jobs.git" };
    await expect(
      api().services.create({
        environmentId: environment.id,
        name: "nightly",
        kind: "JOB",
        config: { git, command: "node report.js", trigger: { type: "cron", schedule: "61 * * * *" } },
      }),
    ).rejects.toMatchObject({ code: "BAD_REQUEST", message: expect.stringMatching(/invalid schedule/) });
    await expect(
      api().services.create({
        environmentId: environment.id,
        name: "nightly",
        kind: "JOB",
        config: { git, command: "node report.js", trigger: { type: "cron", schedule: "0 3 * * *", timeZone: "Mars/Olympus" } },
      }),
    ).rejects.toMatchObject({ code: "BAD_REQUEST", message: expect.stringMatching(/invalid schedule/) });

    const nightly = await api().services.create({
      environmentId: environment.id,
      name: "nightly",
      kind: "JOB",
      config: { git, command: "node report.js", trigger: { type: "cron", schedule: "0 3 * * *", timeZone: "Europe/Paris" }, retries: 2 },
    });
    expect(nightly.config).toMatchObject({
      command: "node report.js",
      trigger: { type: "cron", schedule: "0 3 * * *", timeZone: "Europe/Paris", missedRuns: "run-once" },
      retries: 2,
      timeoutSeconds: 600,
    });
    const skipping = await api().services.update({
      serviceId: nightly.id,
      config: { trigger: { type: "cron", schedule: "0 3 * * *", timeZone: "Europe/Paris", missedRuns: "skip" } },
    });
    expect(skipping.config).toMatchObject({ trigger: { missedRuns: "skip" } });
    await expect(
      api().services.update({ serviceId: nightly.id, config: { trigger: { type: "cron", schedule: "0 3 * * *", missedRuns: "later" as "skip" } } }),
    ).rejects.toMatchObject({ code: "BAD_REQUEST" });
    const seed = await api().services.create({
      environmentId: environment.id,
      name: "seed",
      kind: "JOB",
      config: { git, command: "npm run seed", trigger: { type: "lifecycle", on: ["start"] } },
    });

    const updated = await api().services.update({
      serviceId: seed.id,
      config: { trigger: { type: "lifecycle", on: ["start", "delete"] }, timeoutSeconds: 60 },
    });
    expect(updated.config).toMatchObject({ command: "npm run seed", trigger: { type: "lifecycle", on: ["start", "delete"] }, timeoutSeconds: 60 });
    await expect(api().services.update({ serviceId: nightly.id, config: { trigger: { type: "cron", schedule: "every day" } } })).rejects.toThrow(
      /invalid schedule/,
    );
    // A job is not an application: a job config without a command is refused as one.
    await expect(api().services.create({ environmentId: environment.id, name: "broken", kind: "JOB", config: { git } })).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
  });
});
