import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { clusters, deploymentStages, deployments, services as servicesTable, variables } from "../db/schema";
import { applySchedules, reapExpiredEnvironments } from "./lifecycle";

let clock = new Date("2026-11-30T06:00:00Z"); // Monday, 07:00 in Paris
let services: Services;
let org: SeededOrganization;
const api = () => createCaller({ services, actor: org.as("ADMIN") });

beforeAll(async () => {
  services = testServices((await createTestDatabase()).db, { now: () => clock });
  org = await seedOrganization(services, "envs");
});

async function environmentWithService(project: string) {
  const p = await api().projects.create({ name: project });
  const environment = await api().environments.create({ projectId: p.id, name: "main" });
  const service = await api().services.create({ environmentId: environment.id, name: "web", config: { git: { url: "file:///srv/app.git" }, port: 3000 } });
  return { project: p, environment, service };
}

describe("cloning an environment", () => {
  it("copies services, variables and secrets into an independent environment, and audits it", async () => {
    const { project, environment, service } = await environmentWithService("shop");
    await api().variables.set({ scope: "ENVIRONMENT", targetId: environment.id, key: "MODE", value: "main" });
    await api().variables.set({ scope: "SERVICE", targetId: service.id, key: "API_KEY", value: "k-123", secret: true });
    await api().variables.set({ scope: "PROJECT", targetId: project.id, key: "SHARED", value: "p" });

    const { environment: copy, deployment } = await api().environments.clone({ environmentId: environment.id, name: "feature-x" });
    expect(deployment).toBeNull();
    expect(copy).toMatchObject({ name: "feature-x", projectId: project.id, clonedFromId: environment.id, mode: environment.mode });
    const [copiedService] = await api().services.list({ environmentId: copy.id });
    expect(copiedService).toMatchObject({ name: "web", config: { git: { url: "file:///srv/app.git" }, port: 3000 } });
    expect(copiedService!.id).not.toBe(service.id);

    const effective = Object.fromEntries((await api().variables.effective({ serviceId: copiedService!.id })).map((v) => [v.key, v]));
    expect(effective.MODE).toMatchObject({ value: "main", source: "ENVIRONMENT" });
    expect(effective.API_KEY).toMatchObject({ secret: true, source: "SERVICE" });
    expect(effective.SHARED).toMatchObject({ value: "p", source: "PROJECT" });
    expect(effective.SLIPWAY_SERVICE_DOMAIN?.value).toBe("web-feature-x-shop.localhost");
    // The secret is re-encrypted for its new owner, not shared.
    const secretRows = await services.db.select().from(variables).where(eq(variables.key, "API_KEY"));
    expect(secretRows).toHaveLength(2);
    expect(secretRows[0]!.encryptedValue).not.toBe(secretRows[1]!.encryptedValue);

    // Independent: changing the copy leaves the source as it was.
    await api().services.update({ serviceId: copiedService!.id, config: { port: 4000 } });
    await api().variables.set({ scope: "ENVIRONMENT", targetId: copy.id, key: "MODE", value: "feature" });
    expect(((await api().services.get({ serviceId: service.id })).config as { port?: number }).port).toBe(3000);
    expect((await api().variables.list({ scope: "ENVIRONMENT", targetId: environment.id }))[0]?.value).toBe("main");

    const audit = await api().organization.audit({ action: "environment.clone" });
    expect(audit[0]?.changes).toMatchObject({ source: { id: environment.id, name: "main" }, services: ["web"], variables: 2 });
    await expect(api().environments.clone({ environmentId: environment.id, name: "feature-x" })).rejects.toMatchObject({ code: "CONFLICT" });
  });

  it("copies only the services chosen, on another cluster, following another branch, and refuses an unknown service", async () => {
    const { environment, service } = await environmentWithService("subset");
    const worker = await api().services.create({
      environmentId: environment.id,
      name: "worker",
      config: { git: { url: "file:///srv/app.git", ref: { branch: "main" } } },
    });
    await api().services.create({ environmentId: environment.id, name: "cache", kind: "DATABASE", config: { engine: "redis" } });
    await api().variables.set({ scope: "SERVICE", targetId: service.id, key: "WEB_ONLY", value: "1" });
    await api().variables.set({ scope: "SERVICE", targetId: worker.id, key: "WORKER_ONLY", value: "1" });
    const [other] = await services.db
      .insert(clusters)
      .values({ organizationId: org.organizationId, name: "second", kind: "local", allowLocalRepositories: true })
      .returning();

    const { environment: copy } = await api().environments.clone({
      environmentId: environment.id,
      name: "review",
      clusterId: other!.id,
      services: ["worker"],
      branch: "feature/login",
    });
    expect(copy.clusterId).toBe(other!.id);
    const copied = await api().services.list({ environmentId: copy.id });
    expect(copied.map((s) => s.name)).toEqual(["worker"]);
    expect(copied[0]!.config).toMatchObject({ git: { url: "file:///srv/app.git", ref: { branch: "feature/login" } } });
    expect((await api().variables.list({ scope: "SERVICE", targetId: copied[0]!.id })).map((v) => v.key)).toEqual(["WORKER_ONLY"]);
    // The source keeps its branch.
    expect((await api().services.get({ serviceId: worker.id })).config).toMatchObject({ git: { ref: { branch: "main" } } });
    const [audit] = await api().organization.audit({ action: "environment.clone" });
    expect(audit?.changes).toMatchObject({ name: "review", cluster: "second", services: ["worker"], branch: "feature/login" });

    await expect(api().environments.clone({ environmentId: environment.id, name: "nope", services: ["worker", "missing"] })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: 'Environment "main" has no service named "missing": nothing was cloned',
    });
    await expect(api().environments.clone({ environmentId: environment.id, name: "nope", branch: "--upload-pack=x" })).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
    expect((await api().environments.list({ projectId: copy.projectId })).map((e) => e.name)).not.toContain("nope");
  });

  it("copies the stages, each service in the copy of its stage, and writes nothing when the copy is refused", async () => {
    const { environment, service } = await environmentWithService("staged");
    const worker = await api().services.create({ environmentId: environment.id, name: "worker", config: { git: { url: "file:///srv/app.git" } } });
    await api().stages.add({ environmentId: environment.id, name: "apps" });
    await api().stages.add({ environmentId: environment.id, name: "workers" });
    await api().stages.setService({ serviceId: service.id, stage: "apps" });
    await api().stages.setService({ serviceId: worker.id, stage: "workers" });
    await api().variables.set({ scope: "SERVICE", targetId: worker.id, key: "QUEUE", value: "jobs" });

    const { environment: copy } = await api().environments.clone({ environmentId: environment.id, name: "copy" });
    const stagesOf = async (environmentId: string) =>
      (await api().stages.list({ environmentId })).map((stage) => ({ id: stage.id, name: stage.name, services: stage.services.map((s) => s.name) }));
    const [source, copied] = [await stagesOf(environment.id), await stagesOf(copy.id)];
    expect(copied.map(({ name, services }) => ({ name, services }))).toEqual([
      { name: "default", services: [] },
      { name: "apps", services: ["web"] },
      { name: "workers", services: ["worker"] },
    ]);
    // The copy's own stages, not its source's.
    expect(copied.filter((stage) => stage.id).map((stage) => stage.id)).not.toContain(source[1]!.id);
    const [audit] = await api().organization.audit({ action: "environment.clone" });
    expect(audit).toMatchObject({ targetId: copy.id, changes: { stages: 2, variables: 1, services: ["web", "worker"] } });

    // A copy refused by the database (its name is taken) leaves no service, variable, stage or audit entry behind.
    const rows = async () => ({
      services: (await services.db.select().from(servicesTable).where(eq(servicesTable.organizationId, org.organizationId))).length,
      variables: (await services.db.select().from(variables).where(eq(variables.organizationId, org.organizationId))).length,
      stages: (await services.db.select().from(deploymentStages).where(eq(deploymentStages.organizationId, org.organizationId))).length,
      audit: (await api().organization.audit({ action: "environment.clone" })).length,
    });
    const before = await rows();
    await expect(api().environments.clone({ environmentId: environment.id, name: "copy" })).rejects.toMatchObject({
      code: "CONFLICT",
      message: 'Environment "copy" in project "staged" already exists',
    });
    expect(await rows()).toEqual(before);
  });

  it("keeps the source's sleep setting, which its services that set none follow", async () => {
    const { environment } = await environmentWithService("sleepy");
    await api().environments.update({ environmentId: environment.id, sleepAfterMinutes: 15 });
    const { environment: copy, deployment } = await api().environments.clone({ environmentId: environment.id, name: "copy", deploy: true });
    expect(copy.sleepAfterMinutes).toBe(15);
    const [row] = await services.db.select().from(deployments).where(eq(deployments.id, deployment!.id));
    expect(row!.snapshot.services[0]).toMatchObject({ name: "web", config: { sleepAfterMinutes: 15 } });
  });

  it("copies an empty environment, with nothing to deploy", async () => {
    const project = await api().projects.create({ name: "empty" });
    const environment = await api().environments.create({ projectId: project.id, name: "main" });
    const { environment: copy, deployment } = await api().environments.clone({ environmentId: environment.id, name: "copy", deploy: true });
    expect(deployment).toBeNull();
    expect(await api().services.list({ environmentId: copy.id })).toEqual([]);
    const [audit] = await api().organization.audit({ action: "environment.clone" });
    expect(audit).toMatchObject({ targetId: copy.id, changes: { services: [], variables: 0, stages: 0 } });
  });

  it("deploys the copy when asked", async () => {
    const { environment } = await environmentWithService("deployed");
    const { environment: copy, deployment } = await api().environments.clone({ environmentId: environment.id, name: "copy", deploy: true });
    expect(deployment).toMatchObject({ environmentId: copy.id, action: "DEPLOY", status: "QUEUED" });
    // Its history says where it comes from.
    const [listed] = await api().deployments.list({ environmentId: copy.id });
    expect(listed!.trigger).toMatchObject({ kind: "clone", fromEnvironment: environment.name });
  });
});

describe("rules, schedules and expiry", () => {
  it("gives new environments the matching rule's mode, schedule and lifetime", async () => {
    const { project } = await environmentWithService("ruled");
    const schedule = { weekdays: [1, 2, 3, 4, 5], start: "08:00", stop: "20:00", timeZone: "Europe/Paris" };
    await api().environments.createRule({ projectId: project.id, namePattern: "pr-*", priority: 10, mode: "PREVIEW", lifetimeSeconds: 3600, schedule });
    await api().environments.createRule({ projectId: project.id, namePattern: "*", priority: 0, mode: "STAGING" });
    const preview = await api().environments.create({ projectId: project.id, name: "pr-42" });
    expect(preview).toMatchObject({ mode: "PREVIEW", schedule, expiresAt: new Date(clock.getTime() + 3600_000).toISOString() });
    expect((await api().environments.create({ projectId: project.id, name: "qa" })).mode).toBe("STAGING");
    expect((await api().environments.create({ projectId: project.id, name: "pr-43", mode: "DEVELOPMENT" })).mode).toBe("DEVELOPMENT");
  });

  it("starts and stops an environment at its schedule's times, as SCHEDULER deployments", async () => {
    const { environment } = await environmentWithService("scheduled");
    await api().environments.update({
      environmentId: environment.id,
      schedule: { weekdays: [1, 2, 3, 4, 5], start: "08:00", stop: "20:00", timeZone: "Europe/Paris" },
    });
    const actions = async () => (await api().deployments.list({ environmentId: environment.id })).map((d) => `${d.action}:${d.origin}:${d.actor}`);

    clock = new Date("2026-11-30T06:30:00Z"); // 07:30 Paris: nothing yet
    await applySchedules(services);
    expect(await actions()).toEqual([]);
    clock = new Date("2026-11-30T07:00:30Z"); // 08:00 Paris
    await applySchedules(services);
    expect(await actions()).toEqual(["DEPLOY:SCHEDULER:scheduler"]);
    await applySchedules(services); // the same minute again: nothing new
    expect(await actions()).toHaveLength(1);
    clock = new Date("2026-11-30T19:05:00Z"); // 20:05 Paris
    await applySchedules(services);
    expect((await actions())[0]).toBe("STOP:SCHEDULER:scheduler");
    clock = new Date("2026-12-05T12:00:00Z"); // Saturday noon: the weekend stays off
    await applySchedules(services);
    expect(await actions()).toHaveLength(2);
  });

  it("reaps expired environments through DELETE deployments, keeps protected ones, and a dry run deletes nothing", async () => {
    const expired = (await environmentWithService("expired")).environment;
    const kept = (await environmentWithService("kept")).environment;
    const past = new Date(clock.getTime() - 60_000).toISOString();
    await api().environments.update({ environmentId: expired.id, expiresAt: past });
    await api().environments.update({ environmentId: kept.id, expiresAt: past, protected: true });

    const dry = await api().environments.reap({ dryRun: true });
    // The rule-made previews above (one hour of lifetime) have expired by now too.
    expect(dry.environments.map((e) => `${e.project}/${e.name}`)).toEqual(expect.arrayContaining(["expired/main", "ruled/pr-42"]));
    expect(dry.environments.map((e) => e.environmentId)).not.toContain(kept.id);
    expect(await api().deployments.list({ environmentId: expired.id })).toEqual([]);

    const reaped = await api().environments.reap({ dryRun: false });
    expect(reaped.environments.map((e) => e.environmentId)).toContain(expired.id);
    expect((await api().deployments.list({ environmentId: expired.id })).map((d) => `${d.action}:${d.origin}`)).toEqual(["DELETE:SCHEDULER"]);
    expect(await api().deployments.list({ environmentId: kept.id })).toEqual([]);
  });

  it("reaps the other expired environments when one cannot be deleted, and says why in the audit log once", async () => {
    const broken = await environmentWithService("broken");
    const later = (await environmentWithService("later")).environment;
    // A secret that no longer decrypts: a value sealed for another variable (its context differs).
    await api().variables.set({ scope: "SERVICE", targetId: broken.service.id, key: "TOKEN", value: "t", secret: true });
    await api().variables.set({ scope: "SERVICE", targetId: broken.service.id, key: "OTHER", value: "o" });
    const [other] = await services.db.select().from(variables).where(eq(variables.key, "OTHER"));
    await services.db.update(variables).set({ encryptedValue: other!.encryptedValue }).where(eq(variables.key, "TOKEN"));
    // The broken one expired first, so it comes first.
    await api().environments.update({ environmentId: broken.environment.id, expiresAt: new Date(clock.getTime() - 120_000).toISOString() });
    await api().environments.update({ environmentId: later.id, expiresAt: new Date(clock.getTime() - 60_000).toISOString() });

    const outcome = await reapExpiredEnvironments(services, { dryRun: false, organizationId: org.organizationId });
    expect(outcome.failed.map((f) => f.environmentId)).toEqual([broken.environment.id]);
    expect(outcome.environments.map((e) => e.environmentId)).toContain(later.id);
    expect((await api().deployments.list({ environmentId: later.id })).map((d) => `${d.action}:${d.origin}`)).toEqual(["DELETE:SCHEDULER"]);
    expect(await api().deployments.list({ environmentId: broken.environment.id })).toEqual([]);

    // Every run retries it; the audit log says it once.
    await api().environments.reap({ dryRun: false });
    const failures = await api().organization.audit({ action: "environment.reap_failed" });
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({
      targetId: broken.environment.id,
      actor: "scheduler",
      changes: { project: "broken", name: "main", error: "Encrypted value cannot be decrypted with the configured key" },
    });
  });

  it("deletes an environment whose repository its cluster no longer allows, which it refuses to deploy", async () => {
    const [cluster] = await services.db
      .insert(clusters)
      .values({ organizationId: org.organizationId, name: "strict", kind: "local", allowLocalRepositories: true })
      .returning();
    const project = await api().projects.create({ name: "local-repo" });
    const environment = await api().environments.create({ projectId: project.id, name: "main", clusterId: cluster!.id });
    await api().services.create({ environmentId: environment.id, name: "web", config: { git: { url: "file:///srv/app.git" }, port: 3000 } });
    // An ADMIN disallows local repositories after the service was saved.
    await services.db.update(clusters).set({ allowLocalRepositories: false }).where(eq(clusters.id, cluster!.id));

    await expect(api().deployments.create({ environmentId: environment.id, action: "DEPLOY" })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: expect.stringContaining("local repositories"),
    });
    const deletion = await api().environments.delete({ environmentId: environment.id });
    expect(deletion).toMatchObject({ environmentId: environment.id, action: "DELETE", status: "QUEUED" });
  });

  it("starts the other environments when one cannot be started, and starts that one at the next run once it can", async () => {
    clock = new Date("2026-12-07T06:30:00Z"); // Monday, 07:30 in Paris
    const schedule = { weekdays: [1, 2, 3, 4, 5], start: "08:00", stop: "20:00", timeZone: "Europe/Paris" };
    const broken = await environmentWithService("unstartable");
    const healthy = (await environmentWithService("startable")).environment;
    for (const { id } of [broken.environment, healthy]) await api().environments.update({ environmentId: id, schedule });
    // A secret that no longer decrypts (UNAVAILABLE): a value sealed for another variable.
    await api().variables.set({ scope: "SERVICE", targetId: broken.service.id, key: "SCHEDULED_TOKEN", value: "t", secret: true });
    await api().variables.set({ scope: "SERVICE", targetId: broken.service.id, key: "SCHEDULED_OTHER", value: "o" });
    const [other] = await services.db.select().from(variables).where(eq(variables.key, "SCHEDULED_OTHER"));
    await services.db.update(variables).set({ encryptedValue: other!.encryptedValue }).where(eq(variables.key, "SCHEDULED_TOKEN"));
    const actions = async (environmentId: string) => (await api().deployments.list({ environmentId })).map((d) => `${d.action}:${d.origin}`);

    clock = new Date("2026-12-07T07:00:30Z"); // 08:00 Paris
    const outcome = await applySchedules(services);
    expect(outcome.failed.map((f) => f.environmentId)).toEqual([broken.environment.id]);
    expect(outcome.applied).toContainEqual({ environmentId: healthy.id, action: "DEPLOY" });
    expect(await actions(healthy.id)).toEqual(["DEPLOY:SCHEDULER"]);
    expect(await actions(broken.environment.id)).toEqual([]);

    // Every minute tries it again; the audit log says why once.
    clock = new Date("2026-12-07T07:01:30Z");
    expect((await applySchedules(services)).failed.map((f) => f.environmentId)).toEqual([broken.environment.id]);
    const failures = await api().organization.audit({ action: "environment.schedule_failed" });
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({
      targetId: broken.environment.id,
      actor: "scheduler",
      changes: { error: "Encrypted value cannot be decrypted with the configured key" },
    });

    // Repaired within the day: this morning's start is not lost, and it happens once.
    await api().variables.set({ scope: "SERVICE", targetId: broken.service.id, key: "SCHEDULED_TOKEN", value: "t2", secret: true });
    clock = new Date("2026-12-07T07:05:00Z");
    expect((await applySchedules(services)).failed).toEqual([]);
    expect(await actions(broken.environment.id)).toEqual(["DEPLOY:SCHEDULER"]);
    clock = new Date("2026-12-07T07:06:00Z");
    await applySchedules(services);
    expect(await actions(broken.environment.id)).toEqual(["DEPLOY:SCHEDULER"]);
    expect(await actions(healthy.id)).toEqual(["DEPLOY:SCHEDULER"]);
  });
});
