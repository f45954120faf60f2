import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import pino from "pino";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { clusters } from "../db/schema";
import { pullTask } from "../engines/engine-session";
import { startWebServer } from "../web-server";

let services: Services;
let org: SeededOrganization;
let web: Awaited<ReturnType<typeof startWebServer>>;

beforeAll(async () => {
  const database = await createTestDatabase();
  services = testServices(database.db);
  org = await seedOrganization(services, "sleepers");
  web = await startWebServer({ services, databaseUrl: database.url, logger: pino({ level: "silent" }), port: 0, host: "127.0.0.1" });
});
afterAll(() => web?.close());

const api = () => createCaller({ services, actor: org.as("DEVELOPER") });
const git = { url: "https://example.test/app.git", ref: { branch: "main" } };

/** The settings of sleep when idle (issue 16, part 3): per application or container, an environment's default, audited; jobs and databases refuse it. */
describe("sleep when idle settings", () => {
  it("sends the engine each application's and container's own setting, else its environment's default, 0 meaning never", async () => {
    const project = await api().projects.create({ name: "naps" });
    const environment = await api().environments.create({ projectId: project.id, name: "dev" });
    const own = await api().services.create({ environmentId: environment.id, name: "own", config: { git, sleepAfterMinutes: 15 } });
    const inherits = await api().services.create({ environmentId: environment.id, name: "inherits", config: { git } });
    const never = await api().services.create({ environmentId: environment.id, name: "never", config: { git } });
    await api().services.update({ serviceId: never.id, config: { sleepAfterMinutes: 0 } });
    const image = { name: "nginx", tag: "1.27" };
    const ownContainer = await api().services.create({
      environmentId: environment.id,
      name: "box",
      kind: "CONTAINER",
      config: { image, sleepAfterMinutes: 5 },
    });
    const inheritingContainer = await api().services.create({ environmentId: environment.id, name: "crate", kind: "CONTAINER", config: { image } });
    const job = await api().services.create({
      environmentId: environment.id,
      name: "seed",
      kind: "JOB",
      config: { git, command: "node seed.js", trigger: { type: "lifecycle", on: ["start"] } },
    });
    const updated = await api().environments.update({ environmentId: environment.id, sleepAfterMinutes: 30 });
    expect(updated.sleepAfterMinutes).toBe(30);

    await api().deployments.create({ environmentId: environment.id, action: "DEPLOY" });
    const task = await pullTask(services, org.clusterId);
    const sleepOf = (id: string) => {
      const spec = task!.snapshot.services.find((service) => service.id === id);
      return spec?.kind === "APPLICATION" || spec?.kind === "CONTAINER" ? (spec.config.sleepAfterMinutes ?? null) : `a ${spec?.kind}`;
    };
    expect([own, inherits, never, ownContainer, inheritingContainer].map((service) => sleepOf(service.id))).toEqual([15, 30, 0, 5, 30]);
    // The environment's default is not a job's: its spec has no such setting.
    expect(task!.snapshot.services.find((service) => service.id === job.id)?.config).not.toHaveProperty("sleepAfterMinutes");

    const audit = await createCaller({ services, actor: org.as("ADMIN") }).organization.audit({ action: "environment.update" });
    expect(audit[0]).toMatchObject({ changes: { before: { sleepAfterMinutes: null }, after: { sleepAfterMinutes: 30 } } });
    const serviceAudit = await createCaller({ services, actor: org.as("ADMIN") }).organization.audit({ action: "service.update" });
    expect(serviceAudit[0]).toMatchObject({ changes: { after: { sleepAfterMinutes: 0 } } });
  });

  it("refuses the setting on a job and a database, saying why", async () => {
    const project = await api().projects.create({ name: "awake" });
    const environment = await api().environments.create({ projectId: project.id, name: "dev" });
    const job = await api().services.create({
      environmentId: environment.id,
      name: "migrate",
      kind: "JOB",
      config: { git, command: "node migrate.js", trigger: { type: "lifecycle", on: ["start"] } },
    });
    await expect(api().services.update({ serviceId: job.id, config: { sleepAfterMinutes: 5 } })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: expect.stringContaining("a job runs on its triggers, not on requests") as string,
    });
    const database = await api().services.create({ environmentId: environment.id, name: "db", kind: "DATABASE", config: { engine: "postgresql" } });
    await expect(api().services.update({ serviceId: database.id, config: { sleepAfterMinutes: 5 } })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: expect.stringContaining("a database must answer its applications") as string,
    });
  });

  it("refuses to create a job or a database that asks to sleep, over tRPC and REST, and creates nothing", async () => {
    const project = await api().projects.create({ name: "insomnia" });
    const environment = await api().environments.create({ projectId: project.id, name: "dev" });
    const refusals = [
      { kind: "JOB", config: { git, command: "node cron.js", trigger: { type: "cron", schedule: "0 * * * *" } }, why: "a job runs on its triggers" },
      { kind: "DATABASE", config: { engine: "postgresql" }, why: "a database must answer its applications" },
    ] as const;
    for (const { kind, config, why } of refusals) {
      await expect(
        api().services.create({ environmentId: environment.id, name: kind.toLowerCase(), kind, config: { ...config, sleepAfterMinutes: 5 } }),
      ).rejects.toMatchObject({ code: "BAD_REQUEST", message: expect.stringContaining(why) as string });
    }

    const token = await org.apiToken("DEVELOPER");
    const response = await fetch(`${web.url}/api/v1/services`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ environmentId: environment.id, name: "db", kind: "DATABASE", config: { engine: "redis", sleepAfterMinutes: 0 } }),
    });
    expect({ status: response.status, body: (await response.json()) as unknown }).toMatchObject({
      status: 400,
      body: {
        message:
          "config.sleepAfterMinutes: Only applications and containers sleep when idle: a database must answer its applications at any time. Remove sleepAfterMinutes",
      },
    });
    expect(await api().services.list({ environmentId: environment.id })).toEqual([]);

    // An application still takes it, kind given or not.
    const app = await api().services.create({ environmentId: environment.id, name: "web", kind: "APPLICATION", config: { git, sleepAfterMinutes: 5 } });
    expect(app.config).toMatchObject({ sleepAfterMinutes: 5 });
  });

  it("lets a container sleep: set on create over REST, changed, never, back to the environment's default, each change audited", async () => {
    const project = await api().projects.create({ name: "boxes" });
    const environment = await api().environments.create({ projectId: project.id, name: "dev" });
    const token = await org.apiToken("DEVELOPER");
    const response = await fetch(`${web.url}/api/v1/services`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ environmentId: environment.id, name: "box", kind: "CONTAINER", config: { image: { name: "nginx" }, sleepAfterMinutes: 10 } }),
    });
    const created = (await response.json()) as { id: string; config: Record<string, unknown> };
    expect({ status: response.status, config: created.config }).toMatchObject({ status: 200, config: { sleepAfterMinutes: 10 } });

    const configAfter = async (change: Record<string, unknown>) => (await api().services.update({ serviceId: created.id, config: change })).config;
    expect(await configAfter({ sleepAfterMinutes: 20 })).toMatchObject({ image: { name: "nginx", tag: "latest" }, sleepAfterMinutes: 20 });
    expect(await configAfter({ sleepAfterMinutes: 0 })).toMatchObject({ sleepAfterMinutes: 0 });
    expect(await configAfter({ sleepAfterMinutes: null })).not.toHaveProperty("sleepAfterMinutes");
    await expect(configAfter({ sleepAfterMinutes: -1 })).rejects.toMatchObject({ code: "BAD_REQUEST" });

    const audit = await createCaller({ services, actor: org.as("ADMIN") }).organization.audit({ action: "service.update" });
    const ofBox = audit.filter((entry) => entry.targetId === created.id);
    expect(ofBox.map((entry) => (entry.changes as { after: { sleepAfterMinutes?: number } }).after.sleepAfterMinutes)).toEqual([undefined, 0, 20]);
  });

  it("refuses sleep on a kubernetes cluster, whose Ingress cannot hold a request while a release wakes, and lets it be turned off", async () => {
    const admin = createCaller({ services, actor: org.as("ADMIN") });
    const { cluster } = await admin.clusters.create({ name: "kube", kind: "kubernetes" });
    // What its engine reported when it connected.
    await services.db
      .update(clusters)
      .set({ capabilities: { runtime: "kubernetes", serviceKinds: ["APPLICATION", "CONTAINER", "DATABASE", "JOB"], databases: ["postgresql"] } })
      .where(eq(clusters.id, cluster.id));
    const project = await api().projects.create({ name: "kube-naps" });
    const environment = await api().environments.create({ projectId: project.id, name: "prod", clusterId: cluster.id });
    const refused = 'Cluster "kube" runs services on Kubernetes, where sleep when idle is not supported yet: remove sleepAfterMinutes';

    await expect(api().services.create({ environmentId: environment.id, name: "nap", config: { git, sleepAfterMinutes: 5 } })).rejects.toThrow(refused);
    const app = await api().services.create({ environmentId: environment.id, name: "app", config: { git } });
    await expect(api().services.update({ serviceId: app.id, config: { sleepAfterMinutes: 5 } })).rejects.toThrow(refused);
    await expect(api().environments.update({ environmentId: environment.id, sleepAfterMinutes: 10 })).rejects.toThrow(refused);
    const image = { name: "nginx" };
    await expect(
      api().services.create({ environmentId: environment.id, name: "box", kind: "CONTAINER", config: { image, sleepAfterMinutes: 5 } }),
    ).rejects.toThrow(refused);
    const box = await api().services.create({ environmentId: environment.id, name: "crate", kind: "CONTAINER", config: { image } });
    await expect(api().services.update({ serviceId: box.id, config: { sleepAfterMinutes: 5 } })).rejects.toThrow(refused);
    expect((await api().services.list({ environmentId: environment.id })).map((service) => service.name)).toEqual(["app", "crate"]);

    await api().services.update({ serviceId: app.id, config: { sleepAfterMinutes: 0 } });
    expect((await api().environments.update({ environmentId: environment.id, sleepAfterMinutes: null })).sleepAfterMinutes).toBeNull();
  });
});
