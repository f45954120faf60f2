import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { clusters, deployments, services as servicesTable } from "../db/schema";
import { openSnapshot } from "../deployments/snapshot";
import { pullTask } from "../engines/engine-session";
import { cipherFor } from "../secrets/organization-cipher";
import { registryHostOf } from "../../engine/protocol/snapshot";

let services: Services;
let org: SeededOrganization;
const PASSWORD = "registry-pass-7788";

beforeAll(async () => {
  services = testServices((await createTestDatabase()).db);
  org = await seedOrganization(services, "containers");
});

const api = () => createCaller({ services, actor: org.as("DEVELOPER") });

describe("container services", () => {
  it("keeps the registry password sealed at rest, out of answers and audit, and opens it only for the engine", async () => {
    const project = await api().projects.create({ name: "boxes" });
    const environment = await api().environments.create({ projectId: project.id, name: "dev" });
    const service = await api().services.create({
      environmentId: environment.id,
      name: "cache",
      kind: "CONTAINER",
      config: { image: { name: "ghcr.io/acme/cache", tag: "1.2", credentials: { username: "bot", password: PASSWORD } }, port: 6379 },
    });
    expect(service.config).toMatchObject({ image: { name: "ghcr.io/acme/cache", tag: "1.2", credentials: { username: "bot", password: "[secret]" } } });
    const [row] = await services.db.select().from(servicesTable).where(eq(servicesTable.id, service.id));
    expect(JSON.stringify(row!.config)).not.toContain(PASSWORD);

    // A new tag keeps the credentials, still sealed.
    const updated = await api().services.update({ serviceId: service.id, config: { image: { tag: "1.3" } } });
    expect(updated.config).toMatchObject({ image: { name: "ghcr.io/acme/cache", tag: "1.3", credentials: { username: "bot", password: "[secret]" } } });

    const { deployment } = await api().deployments.create({ environmentId: environment.id, action: "DEPLOY" });
    const [stored] = await services.db.select().from(deployments).where(eq(deployments.id, deployment.id));
    expect(JSON.stringify(stored!.snapshot)).not.toContain(PASSWORD);
    const task = await pullTask(services, org.clusterId);
    const spec = task!.snapshot.services[0]!;
    expect(spec.kind).toBe("CONTAINER");
    expect(spec.kind === "CONTAINER" && spec.config.image).toEqual({
      name: "ghcr.io/acme/cache",
      tag: "1.3",
      credentials: { username: "bot", password: PASSWORD },
    });

    const audit = await createCaller({ services, actor: org.as("ADMIN") }).organization.audit({ limit: 50 });
    expect(JSON.stringify(audit)).not.toContain(PASSWORD);
  });

  it("leaves the registry credentials behind when the image moves to another registry host", async () => {
    // A DEVELOPER pointed the image at a host of theirs and the next pull sent it the hidden password (review F2).
    const project = await api().projects.create({ name: "registries" });
    const environment = await api().environments.create({ projectId: project.id, name: "dev" });
    const service = await api().services.create({
      environmentId: environment.id,
      name: "api",
      kind: "CONTAINER",
      config: { image: { name: "ghcr.io/acme/api", tag: "1", credentials: { username: "bot", password: PASSWORD } } },
    });
    const update = (image: Record<string, unknown>) => api().services.update({ serviceId: service.id, config: { image } });
    const engineImage = async () => {
      const { deployment } = await api().deployments.create({ environmentId: environment.id, action: "DEPLOY" });
      const [stored] = await services.db.select().from(deployments).where(eq(deployments.id, deployment.id));
      const cipher = await cipherFor(services.db, services.keyring, org.organizationId);
      const spec = openSnapshot(cipher, deployment.id, stored!.snapshot!).services.find((s) => s.id === service.id)!;
      return spec.kind === "CONTAINER" ? spec.config.image : null;
    };

    // Another repository on the same registry keeps them.
    expect((await update({ name: "ghcr.io/acme/worker" })).config).toMatchObject({ image: { credentials: { username: "bot", password: "[secret]" } } });
    // A new username alone does not carry the stored password to another host: it is refused.
    await expect(update({ name: "evil.example.com/x", credentials: { username: "me" } })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: expect.stringContaining("image.credentials.password"),
    });

    const moved = await update({ name: "evil.example.com/x" });
    expect(moved.config).toMatchObject({ image: { name: "evil.example.com/x" } });
    expect((moved.config as { image: object }).image).not.toHaveProperty("credentials");
    expect(await engineImage()).toEqual({ name: "evil.example.com/x", tag: "1" });
    const [entry] = (await createCaller({ services, actor: org.as("ADMIN") }).organization.audit({ limit: 50 })).filter(
      (e) => e.action === "service.update" && e.targetId === service.id,
    );
    expect(entry!.changes).toMatchObject({ before: { image: { credentials: { username: "bot" } } }, after: { image: { name: "evil.example.com/x" } } });
    expect((entry!.changes as { after: { image: object } }).after.image).not.toHaveProperty("credentials");

    // Credentials given with the move are the new host's.
    await update({ name: "registry.example.com:443/acme/api", credentials: { username: "ci", password: "new-host-pass" } });
    expect(await engineImage()).toEqual({ name: "registry.example.com:443/acme/api", tag: "1", credentials: { username: "ci", password: "new-host-pass" } });
  });

  it("tells an image's registry host as the engine does, Docker Hub by default", () => {
    const hosts = {
      nginx: "docker.io",
      "nginx:1.27": "docker.io",
      "library/nginx": "docker.io",
      "user/app:tag": "docker.io",
      "docker.io/library/nginx": "docker.io",
      "ghcr.io/x/y": "ghcr.io",
      "localhost/base": "localhost",
      "localhost:5000/x": "localhost:5000",
      "registry.example.com:443/x@sha256:0123abcd": "registry.example.com:443",
      "registry.example.com/x": "registry.example.com",
    };
    expect(Object.fromEntries(Object.keys(hosts).map((image) => [image, registryHostOf(image)]))).toEqual(hosts);
  });

  it("takes a new image only as an object, and never removes it: a string or null used to answer 200 and change nothing", async () => {
    const project = await api().projects.create({ name: "images" });
    const environment = await api().environments.create({ projectId: project.id, name: "dev" });
    const config = { image: { name: "nginx", tag: "1.27" } };
    const service = await api().services.create({ environmentId: environment.id, name: "web", kind: "CONTAINER", config });
    for (const image of ["nginx:1.28", 5, null, ["nginx"]]) {
      await expect(api().services.update({ serviceId: service.id, config: { image } })).rejects.toMatchObject({
        code: "BAD_REQUEST",
        message: 'config.image: give an object such as { "name": "nginx", "tag": "1.27" }; a container cannot go without an image',
      });
    }
    expect((await api().services.get({ serviceId: service.id })).config).toMatchObject(config);
  });

  it("takes a command (argv) for a container, on create and update, and hands it to the engine", async () => {
    // It answered 400 "a CONTAINER service needs an image": `command` was taken for the mark of a JOB (issue 15, item 17).
    const project = await api().projects.create({ name: "commands" });
    const environment = await api().environments.create({ projectId: project.id, name: "dev" });
    const command = ["nginx", "-g", "daemon off;"];
    const service = await api().services.create({
      environmentId: environment.id,
      name: "web",
      kind: "CONTAINER",
      config: { image: { name: "nginx" }, command },
    });
    expect(service).toMatchObject({ kind: "CONTAINER", config: { image: { name: "nginx", tag: "latest" }, command } });
    const updated = await api().services.update({ serviceId: service.id, config: { command: ["sh", "-c", "exec nginx"] } });
    expect(updated.config).toMatchObject({ command: ["sh", "-c", "exec nginx"] });
    expect((await api().services.update({ serviceId: service.id, config: { command: null } })).config).not.toHaveProperty("command");

    await api().services.update({ serviceId: service.id, config: { command } });
    const { deployment } = await api().deployments.create({ environmentId: environment.id, action: "DEPLOY" });
    // What the engine is handed: the snapshot, opened as the engine session opens it.
    const [stored] = await services.db.select().from(deployments).where(eq(deployments.id, deployment.id));
    const cipher = await cipherFor(services.db, services.keyring, org.organizationId);
    const spec = openSnapshot(cipher, deployment.id, stored!.snapshot!).services[0]!;
    expect(spec.kind === "CONTAINER" && spec.config.command).toEqual(command);

    // A JOB is still told apart, by its trigger, which no other kind has.
    await expect(
      api().services.create({
        environmentId: environment.id,
        name: "job",
        kind: "JOB",
        config: { git: { url: "https://example.test/a.git" }, command: "true" } as never,
      }),
    ).rejects.toMatchObject({ code: "BAD_REQUEST", message: expect.stringContaining("a JOB service needs a command and a trigger") });
  });

  it("refuses a kind the cluster's engine says it cannot run", async () => {
    await services.db
      .update(clusters)
      .set({ capabilities: { runtime: "local", serviceKinds: ["APPLICATION"] } })
      .where(eq(clusters.id, org.clusterId));
    const project = await api().projects.create({ name: "local-only" });
    const environment = await api().environments.create({ projectId: project.id, name: "dev" });
    await expect(
      api().services.create({ environmentId: environment.id, name: "db", kind: "CONTAINER", config: { image: { name: "postgres" } } }),
    ).rejects.toMatchObject({ code: "BAD_REQUEST", message: 'Cluster "local" cannot run CONTAINER services: its engine runs APPLICATION' });
    await expect(
      api().services.update({
        serviceId: (await api().services.create({ environmentId: environment.id, name: "web", config: { git: { url: "file:///srv/a.git" } } })).id,
        config: { port: 0 },
      }),
    ).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
  });
});
