import { beforeAll, describe, expect, it } from "vitest";
import { TRPCError } from "@trpc/server";
import { createTestDatabase, type TestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import type { Services } from "../context";
import { auditEvents, deployments, dnsProviders, webhookDeliveries } from "../db/schema";
import { eq } from "drizzle-orm";
import { appRouter, createCaller } from "./root";

let database: TestDatabase;
let services: Services;
let acme: SeededOrganization;
let globex: SeededOrganization;

beforeAll(async () => {
  database = await createTestDatabase();
  services = testServices(database.db);
  acme = await seedOrganization(services, "acme");
  globex = await seedOrganization(services, "globex");
});

const callerFor = (org: SeededOrganization, role: "OWNER" | "ADMIN" | "DEVELOPER" | "VIEWER" = "OWNER") => createCaller({ services, actor: org.as(role) });

const application = { git: { url: "https://example.test/app.git", ref: { branch: "main" } } };

async function seedEnvironment(org: SeededOrganization, projectName: string) {
  const api = callerFor(org);
  const project = await api.projects.create({ name: projectName });
  const environment = await api.environments.create({ projectId: project.id, name: "dev" });
  const service = await api.services.create({ environmentId: environment.id, name: "web", config: application });
  return { project, environment, service };
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "OK";
  } catch (error) {
    if (error instanceof TRPCError) return error.code;
    throw error;
  }
}

describe("the API", () => {
  it("creates a project, an environment and a service, and lists them", async () => {
    const { project, environment } = await seedEnvironment(acme, "shop");
    const api = callerFor(acme, "VIEWER");
    expect((await api.projects.list({})).map((p) => p.name)).toContain("shop");
    expect((await api.environments.list({ projectId: project.id })).map((e) => e.name)).toEqual(["dev"]);
    const [service] = await api.services.list({ environmentId: environment.id });
    expect(service).toMatchObject({ name: "web", kind: "APPLICATION", config: { git: { url: application.git.url, rootDirectory: "" } } });
    expect(await api.organization.resolve({ path: "shop/dev/web" })).toEqual({ projectId: project.id, environmentId: environment.id, serviceId: service!.id });
  });

  it("rejects bad input with a reason and duplicates with CONFLICT", async () => {
    const api = callerFor(acme);
    await expect(api.projects.create({ name: "Not A Label" })).rejects.toMatchObject({ code: "BAD_REQUEST" });
    await expect(api.projects.create({ name: "shop" })).rejects.toMatchObject({ code: "CONFLICT", message: 'Project "shop" already exists' });
    const { environment } = await seedEnvironment(acme, "bad-input");
    await expect(
      api.services.create({ environmentId: environment.id, name: "web2", config: { git: { url: "--upload-pack=touch /tmp/x" } } }),
    ).rejects.toMatchObject({ code: "BAD_REQUEST" });
    await expect(api.variables.set({ scope: "ENVIRONMENT", targetId: environment.id, key: "SLIPWAY_X", value: "1" })).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
  });

  it("takes only a DNS name as a cluster's domain suffix: services get hostnames under it", async () => {
    const api = callerFor(acme);
    for (const domainSuffix of [
      "",
      "apps example.com",
      "apps.example.com/",
      "Apps.Example.com",
      "-apps.example.com",
      "apps..example.com",
      "\u202Eevil.com",
      "a:8080",
    ]) {
      expect([domainSuffix, await codeOf(api.clusters.create({ name: "edge", domainSuffix }))]).toEqual([domainSuffix, "BAD_REQUEST"]);
    }
    expect(await api.clusters.create({ name: "edge", domainSuffix: "apps.127.0.0.1.nip.io" })).toMatchObject({
      cluster: { domainSuffix: "apps.127.0.0.1.nip.io" },
    });
  });

  it("enforces roles: a VIEWER reads but cannot deploy or edit", async () => {
    const { environment } = await seedEnvironment(acme, "roles");
    const viewer = callerFor(acme, "VIEWER");
    expect(await codeOf(viewer.services.list({ environmentId: environment.id }))).toBe("OK");
    expect(await codeOf(viewer.deployments.create({ environmentId: environment.id, action: "DEPLOY" }))).toBe("FORBIDDEN");
    expect(await codeOf(viewer.projects.create({ name: "nope" }))).toBe("FORBIDDEN");
    expect(await codeOf(callerFor(acme, "DEVELOPER").organization.audit({}))).toBe("FORBIDDEN");
    expect(await codeOf(createCaller({ services, actor: null }).projects.list({}))).toBe("UNAUTHORIZED");
  });

  it("keeps secret values out of every answer and the audit log, but encrypted in the snapshot", async () => {
    const { environment, service } = await seedEnvironment(acme, "secrets");
    const api = callerFor(acme);
    const secretValue = "s3cr3t-value-4242";
    await api.variables.set({ scope: "SERVICE", targetId: service.id, key: "API_KEY", value: secretValue, secret: true });
    await api.variables.set({ scope: "ENVIRONMENT", targetId: environment.id, key: "GREETING", value: "hello" });
    const listed = await api.variables.list({ scope: "SERVICE", targetId: service.id });
    expect(listed).toEqual([{ key: "API_KEY", scope: "SERVICE", targetId: service.id, secret: true, value: null, job: null }]);
    expect((await api.variables.list({ scope: "ENVIRONMENT", targetId: environment.id }))[0]?.value).toBe("hello");
    await expect(api.variables.set({ scope: "SERVICE", targetId: service.id, key: "API_KEY", value: "plain" })).rejects.toMatchObject({
      code: "CONFLICT",
    });

    const { deployment } = await api.deployments.create({ environmentId: environment.id, action: "DEPLOY" });
    const audit = await api.organization.audit({ limit: 500 });
    expect(JSON.stringify(audit)).not.toContain(secretValue);
    expect(audit.find((e) => e.action === "variable.create" && e.targetId?.endsWith(":API_KEY"))?.changes).toMatchObject({ value: "[secret]" });
    const [row] = await services.db.select().from(deployments).where(eq(deployments.id, deployment.id));
    expect(JSON.stringify(row!.snapshot)).not.toContain(secretValue);
    expect(JSON.stringify(row!.snapshot)).not.toContain("hello");
    expect(JSON.stringify(await api.deployments.get({ deploymentId: deployment.id }))).not.toContain(secretValue);
  });

  it("merges a request into the same action still waiting in the queue", async () => {
    const { environment, service } = await seedEnvironment(acme, "merge");
    const api = callerFor(acme, "DEVELOPER");
    // A deployment of an idle environment is leased to its engine at once; what is asked for while it runs waits.
    const running = await api.deployments.create({ environmentId: environment.id, action: "RESTART" });
    expect(running.merged).toBe(false);
    const first = await api.deployments.create({ environmentId: environment.id, action: "DEPLOY", serviceIds: [service.id] });
    const second = await api.deployments.create({ environmentId: environment.id, action: "DEPLOY" });
    expect(second.merged).toBe(true);
    expect(second.deployment.id).toBe(first.deployment.id);
    expect(second.deployment.serviceIds).toBeNull();
    const stop = await api.deployments.create({ environmentId: environment.id, action: "STOP" });
    expect(stop.merged).toBe(false);
    const canceled = await api.deployments.cancel({ deploymentId: stop.deployment.id });
    expect(canceled.status).toBe("CANCELED");
  });

  it("keeps the commit a push pinned for a job when a request for another service merges in", async () => {
    const { environment, service: web } = await seedEnvironment(acme, "pinned");
    const api = callerFor(acme, "DEVELOPER");
    const migrate = await api.services.create({
      environmentId: environment.id,
      name: "migrate",
      kind: "JOB",
      config: { git: application.git, command: "node migrate.js", trigger: { type: "lifecycle", on: ["start"] } },
    });
    const appCommit = { commit: "a".repeat(40) };
    const jobCommit = { commit: "b".repeat(40) };
    // Something runs, so the push waits in the queue; a redeploy of the app alone then merges into it.
    await api.deployments.create({ environmentId: environment.id, action: "RESTART" });
    const pushed = await api.deployments.create({
      environmentId: environment.id,
      action: "DEPLOY",
      serviceIds: [web.id, migrate.id],
      refs: { [web.id]: appCommit, [migrate.id]: jobCommit },
    });
    const merged = await api.deployments.create({ environmentId: environment.id, action: "DEPLOY", serviceIds: [web.id] });
    expect(merged).toMatchObject({ merged: true, deployment: { id: pushed.deployment.id } });
    const [row] = await services.db.select().from(deployments).where(eq(deployments.id, pushed.deployment.id));
    const refOf = (id: string) => {
      const spec = row!.snapshot.services.find((candidate) => candidate.id === id);
      return spec && (spec.kind === "APPLICATION" || spec.kind === "JOB") ? spec.config.git.ref : null;
    };
    // The app follows its branch again (the newer request did not pin it); the job keeps its pin.
    expect(refOf(migrate.id)).toEqual(jobCommit);
    expect(refOf(web.id)).not.toEqual(appCommit);
  });

  it("writes an audit event for every mutation, with actor and origin", async () => {
    await seedEnvironment(acme, "audited");
    const audit = await callerFor(acme).organization.audit({ limit: 500 });
    const actions = new Set(audit.map((e) => e.action));
    for (const action of ["project.create", "environment.create", "service.create", "variable.create", "deployment.deploy", "deployment.cancel"]) {
      expect(actions).toContain(action);
    }
    expect(audit[0]).toMatchObject({ actor: "acme-owner", origin: "API", actorType: "user" });
    const rows = await services.db.select().from(auditEvents).where(eq(auditEvents.organizationId, globex.organizationId));
    expect(rows).toEqual([]);
  });
});

describe("organization isolation", () => {
  it("answers NOT_FOUND or FORBIDDEN on every procedure for another organization's ids", async () => {
    const { project, environment, service } = await seedEnvironment(acme, "isolated");
    const owner = callerFor(acme);
    const intruder = createCaller({ services, actor: globex.as("OWNER") });
    const call = (path: string, input: unknown) => {
      const [group, name] = path.split(".") as [string, string];
      const fn = (intruder as unknown as Record<string, Record<string, (input: unknown) => Promise<unknown>>>)[group]![name]!;
      return fn(input);
    };
    const { deployment } = await owner.deployments.create({ environmentId: environment.id, action: "RESTART" });
    const { apiToken } = await owner.organization.createToken({ name: "ci", role: "DEVELOPER" });
    const acmeInvite = await owner.members.invite({ role: "DEVELOPER" });
    const acmeUserId = acme.as("OWNER").id!;
    const acmeRule = await owner.environments.createRule({ projectId: project.id, namePattern: "feature-*" });
    await owner.environments.update({ environmentId: environment.id, expiresAt: new Date(Date.now() - 1000).toISOString() });
    const { connection: acmeConnection } = await owner.git.connect({ provider: "github", name: "acme-github" });
    const { rule: acmeNotification } = await owner.notifications.create({
      projectId: project.id,
      name: "acme-alerts",
      events: ["deployment.failed"],
      channel: { type: "webhook", url: "https://hooks.example.test/acme" },
    });
    const acmeStage = await owner.stages.add({ environmentId: environment.id, name: "frontends" });
    const acmeDomain = await owner.domains.add({ serviceId: service.id, hostname: "shop.acme.example", method: "HTTP_TOKEN" });
    const [acmeDelivery] = await services.db
      .insert(webhookDeliveries)
      .values({
        organizationId: acme.organizationId,
        connectionId: acmeConnection.id,
        deliveryId: "d-1",
        event: "ping",
        headers: {},
        payload: "{}",
        status: "IGNORED",
      })
      .returning();
    // Inserted as it is stored: creating one through the API asks a real PowerDNS (test/integration/custom-domains-dns01.test.ts).
    const [acmeDnsProvider] = await services.db
      .insert(dnsProviders)
      .values({
        organizationId: acme.organizationId,
        name: "acme-dns",
        kind: "POWERDNS",
        zone: "acme.example",
        settings: { kind: "POWERDNS", apiUrl: "http://127.0.0.1:9", serverId: "localhost" },
        encryptedToken: "sealed",
        tokenHint: "…",
      })
      .returning();

    // One input per procedure, naming acme's resources; globex's OWNER calls each of them.
    const acmeInputs: Record<string, unknown> = {
      "projects.delete": { projectId: project.id },
      "environments.list": { projectId: project.id },
      "environments.get": { environmentId: environment.id },
      "environments.liveCommits": { environmentId: environment.id },
      "environments.create": { projectId: project.id, name: "intruder" },
      "environments.delete": { environmentId: environment.id },
      "services.list": { environmentId: environment.id },
      "services.get": { serviceId: service.id },
      "services.plan": { serviceId: service.id },
      "services.create": { environmentId: environment.id, name: "intruder", config: application },
      "services.update": { serviceId: service.id, config: { port: 1234 } },
      "services.delete": { serviceId: service.id },
      "variables.list": { scope: "SERVICE", targetId: service.id },
      "variables.set": { scope: "PROJECT", targetId: project.id, key: "X", value: "1" },
      "variables.unset": { scope: "PROJECT", targetId: project.id, key: "X" },
      "deployments.create": { environmentId: environment.id, action: "DEPLOY" },
      "deployments.rollback": { environmentId: environment.id, to: deployment.id },
      "deployments.promote": { fromEnvironmentId: environment.id, toEnvironmentId: environment.id },
      "deployments.promotePlan": { fromEnvironmentId: environment.id, toEnvironmentId: environment.id },
      "deployments.list": { environmentId: environment.id },
      "deployments.get": { deploymentId: deployment.id },
      "deployments.events": { deploymentId: deployment.id },
      "deployments.changes": { deploymentId: deployment.id },
      "deployments.summary": { deploymentId: deployment.id },
      "deployments.cancel": { deploymentId: deployment.id },
      "deployments.logs": { serviceId: service.id },
      "deployments.logReleases": { serviceId: service.id },
      "metrics.series": { serviceId: service.id, window: "15m" },
      "metrics.current": { serviceId: service.id },
      "clusters.update": { clusterId: acme.clusterId, allowLocalRepositories: false },
      "clusters.rotateToken": { clusterId: acme.clusterId },
      "clusters.revokeToken": { clusterId: acme.clusterId },
      "organization.resolve": { path: "isolated/dev/web" },
      "organization.revokeToken": { tokenId: apiToken.id },
      "variables.effective": { serviceId: service.id },
      "variables.import": { scope: "SERVICE", targetId: service.id, content: "A=1" },
      "members.changeRole": { userId: acmeUserId, role: "VIEWER" },
      "members.remove": { userId: acmeUserId },
      "members.revokeInvite": { inviteId: acmeInvite.invite.id },
      "environments.update": { environmentId: environment.id, protected: true },
      "environments.clone": { environmentId: environment.id, name: "stolen" },
      "environments.rules": { projectId: project.id },
      "environments.createRule": { projectId: project.id, namePattern: "pr-*" },
      "environments.deleteRule": { ruleId: acmeRule.id },
      "services.gitTriggers": { serviceId: service.id },
      "services.setGitTriggers": { serviceId: service.id, autoDeploy: false },
      "git.update": { connectionId: acmeConnection.id, apiToken: "stolen" },
      "git.rotateSecret": { connectionId: acmeConnection.id },
      "git.delete": { connectionId: acmeConnection.id },
      "git.deliveries": { connectionId: acmeConnection.id },
      "git.delivery": { deliveryId: acmeDelivery!.id },
      "git.redeliver": { deliveryId: acmeDelivery!.id },
      "git.setPreviewBlueprint": { environmentId: environment.id, enabled: true },
      "notifications.create": {
        projectId: project.id,
        name: "intruder",
        events: ["deployment.failed"],
        channel: { type: "slack", url: "https://example.test/x" },
      },
      "notifications.update": { ruleId: acmeNotification.id, enabled: false },
      "notifications.delete": { ruleId: acmeNotification.id },
      "notifications.test": { ruleId: acmeNotification.id },
      "notifications.deliveries": { ruleId: acmeNotification.id },
      "stages.list": { environmentId: environment.id },
      "stages.add": { environmentId: environment.id, name: "intruders" },
      "stages.move": { stageId: acmeStage.id, position: 1 },
      "stages.remove": { stageId: acmeStage.id },
      "stages.setService": { serviceId: service.id, stage: "frontends" },
      "domains.list": { serviceId: service.id },
      "domains.add": { serviceId: service.id, hostname: "stolen.acme.example", method: "HTTP_TOKEN" },
      "domains.verify": { domainId: acmeDomain.id },
      "domains.update": { domainId: acmeDomain.id, redirectHttps: false },
      "domains.remove": { domainId: acmeDomain.id },
      "domains.uploadCertificate": { domainId: acmeDomain.id, certificatePem: "-----BEGIN CERTIFICATE-----", privateKeyPem: "-----BEGIN PRIVATE KEY-----" },
      "domains.renewCertificate": { domainId: acmeDomain.id },
      "dnsProviders.update": { dnsProviderId: acmeDnsProvider!.id, token: "stolen" },
      "dnsProviders.remove": { dnsProviderId: acmeDnsProvider!.id },
      // Token-based and public: another organization's token is simply unknown to the caller.
      "invites.preview": { token: "swi_not-a-token" },
      "invites.accept": { token: "swi_not-a-token" },
      "organizations.transfer": { email: "acme@example.test" },
      // The instance's, not an organization's: refused to a non-admin, and sign-up is by invitation by default.
      "instance.updateSettings": { signup: "OPEN" },
      "instance.signUp": { name: "Intruder", email: "intruder@example.test", password: "a long password" },
    };
    // Acts on the caller's own organization, whatever name is typed: acme's is a wrong confirmation.
    expect(await codeOf(call("organizations.delete", { confirm: "acme" }))).toBe("BAD_REQUEST");
    // A provider of the caller's own: its token is checked first (nothing listens there), so it is refused, and acme's is untouched.
    const dnsProviderInput = { name: "globex-dns", zone: "globex.example", settings: { kind: "POWERDNS", apiUrl: "http://127.0.0.1:9" }, token: "t" };
    expect(await codeOf(call("dnsProviders.create", dnsProviderInput))).toBe("BAD_REQUEST");
    // Nor may a domain of the caller's own publish through acme's provider.
    const globexOwn = await seedEnvironment(globex, "globex-dns");
    expect(
      await codeOf(
        call("domains.add", { serviceId: globexOwn.service.id, hostname: "www.acme.example", challenge: "DNS_01", dnsProviderId: acmeDnsProvider!.id }),
      ),
    ).toBe("NOT_FOUND");
    // Procedures that take no id: they must simply not show acme's data.
    const listings: Record<string, unknown> = {
      "projects.list": {},
      "projects.create": { name: "globex-own" },
      "clusters.list": {},
      "clusters.create": { name: "globex-extra" },
      "organization.whoami": {},
      "organization.tokens": {},
      "organization.createToken": { name: "globex-token", role: "VIEWER" },
      "organization.audit": {},
      "organization.overview": {},
      "organization.mine": {},
      "members.list": {},
      "members.invites": {},
      "members.invite": { role: "VIEWER" },
      "environments.reap": { dryRun: false },
      "git.connect": { provider: "gitlab", name: "globex-gitlab" },
      "git.list": {},
      "git.previews": {},
      "notifications.list": {},
      "notifications.events": {},
      "dnsProviders.list": {},
      "organizations.create": { name: "globex-second" },
      "organizations.rename": { name: "globex" },
      "instance.settings": {},
      "instance.account": {},
      // The caller's own account: it ends the intruder's own sessions, nobody else's.
      "instance.signOutEverywhere": {},
    };
    const procedures = Object.keys(appRouter._def.procedures);
    expect(procedures.filter((p) => !(p in acmeInputs) && !(p in listings) && p !== "organizations.delete" && p !== "dnsProviders.create")).toEqual([]);

    for (const [path, input] of Object.entries(acmeInputs)) {
      expect([path, await codeOf(call(path, input))]).toSatisfy(([, code]: [string, string]) => code === "NOT_FOUND" || code === "FORBIDDEN");
    }
    for (const [path, input] of Object.entries(listings)) {
      const answer = JSON.stringify(await call(path, input));
      for (const id of [
        project.id,
        environment.id,
        service.id,
        deployment.id,
        acme.clusterId,
        apiToken.id,
        acme.organizationId,
        acmeUserId,
        acmeInvite.invite.id,
        acmeConnection.id,
        acmeNotification.id,
        acmeStage.id,
        acmeDomain.id,
        acmeDnsProvider!.id,
      ]) {
        expect(answer, path).not.toContain(id);
      }
    }
    // And nothing of acme's changed.
    expect(((await owner.services.get({ serviceId: service.id })).config as { port?: number }).port).toBeUndefined();
    expect((await owner.deployments.get({ deploymentId: deployment.id })).status).toBe("QUEUED");
    expect((await owner.environments.get({ environmentId: environment.id })).protected).toBe(false);
    expect((await owner.deployments.list({ environmentId: environment.id })).map((d) => d.action)).not.toContain("DELETE");
    expect(await owner.services.gitTriggers({ serviceId: service.id })).toMatchObject({ autoDeploy: true });
    expect((await owner.git.list({})).map((c) => c.id)).toEqual([acmeConnection.id]);
    expect((await owner.git.delivery({ deliveryId: acmeDelivery!.id })).status).toBe("IGNORED");
    expect(await owner.notifications.list({})).toMatchObject([{ id: acmeNotification.id, enabled: true }]);
    expect(await owner.notifications.deliveries({ ruleId: acmeNotification.id })).toEqual([]);
  });

  it("answers NOT_FOUND for another organization's id inside the caller's own resources, as for an unknown id, and writes nothing", async () => {
    const { project, environment } = await seedEnvironment(globex, "own");
    const { service: acmeService } = await seedEnvironment(acme, "foreign");
    const api = callerFor(globex);
    const unknown = "00000000-0000-4000-8000-000000000000";
    for (const clusterId of [acme.clusterId, unknown]) {
      expect(await codeOf(api.environments.createRule({ projectId: project.id, namePattern: "pr-*", clusterId }))).toBe("NOT_FOUND");
      expect(await codeOf(api.environments.create({ projectId: project.id, name: "elsewhere", clusterId }))).toBe("NOT_FOUND");
      expect(await codeOf(api.environments.clone({ environmentId: environment.id, name: "elsewhere", clusterId }))).toBe("NOT_FOUND");
    }
    for (const projectId of [acme.organizationId, unknown]) {
      expect(await codeOf(api.environments.clone({ environmentId: environment.id, name: "elsewhere", projectId }))).toBe("NOT_FOUND");
    }
    for (const serviceId of [acmeService.id, unknown]) {
      expect(await codeOf(api.deployments.create({ environmentId: environment.id, action: "DEPLOY", serviceIds: [serviceId] }))).toBe("NOT_FOUND");
    }
    expect(await api.environments.rules({ projectId: project.id })).toEqual([]);
    expect((await api.environments.list({ projectId: project.id })).map((e) => e.name)).toEqual(["dev"]);
    expect(await api.deployments.list({ environmentId: environment.id })).toEqual([]);
  });
});
