/**
 * Custom domains against generated hostnames, on a real PostgreSQL. The router serves a verified
 * custom domain's service before a generated hostname's, and answers a domain's HTTP token at any
 * name the cluster's wildcard record points at it: a custom domain under the cluster's domain
 * suffix would take another service's requests. Such domains are refused, and a service is refused
 * the hostname of one added before this check. A generated hostname's first label DNS would
 * refuse (more than 63 characters) is refused however the service comes to be.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { selfSignedCertificate } from "../../test/support/self-signed";
import { openedPullRequest } from "../../test/support/webhooks";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { environments, gitConnections, serviceDomains } from "../db/schema";
import { cipherFor } from "../secrets/organization-cipher";
import { loadCandidates } from "../webhooks/candidates";
import { onPullRequest } from "../webhooks/previews";
import { issueCertificate, scheduleRenewals } from "./acme";
import { issuanceJobKey, keyContext } from "./domains";
import { edgeStateOf } from "./edge-state";
import { defaultDomainSettings } from "./settings";

const git = { url: "https://github.com/acme/shop.git", ref: { branch: "main" } };
const suffix = "apps.example.test";

let services: Services;
let org: SeededOrganization;
let api: ReturnType<typeof createCaller>;
let edgeClusterId: string;
/** Services `web` and `api` in environment `prod` of project `shop`, on the cluster of `apps.example.test`. */
let shop: { projectId: string; prodId: string; webId: string; apiId: string };

/** A custom domain as a release before this check could store it (the API refuses it now). */
async function legacyDomain(serviceId: string, hostname: string, verified: boolean) {
  const [row] = await services.db
    .insert(serviceDomains)
    .values({
      organizationId: org.organizationId,
      serviceId,
      hostname,
      verificationMethod: "HTTP_TOKEN",
      verificationToken: randomBytes(24).toString("base64url"),
      verifiedAt: verified ? new Date() : null,
    })
    .returning();
  return row!;
}

let dir: string;

beforeAll(async () => {
  // Nothing listens there: an issuance that should not have begun fails at once, on 127.0.0.1.
  const acme = { ...defaultDomainSettings.acme, directoryUrl: "https://127.0.0.1:9/directory" };
  services = testServices((await createTestDatabase()).db, { domains: { ...defaultDomainSettings, acme } });
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-hostname-conflicts-"));
  org = await seedOrganization(services, "hostname-conflicts");
  api = createCaller({ services, actor: org.as("DEVELOPER") });
  const { cluster } = await createCaller({ services, actor: org.as("ADMIN") }).clusters.create({ name: "edge", domainSuffix: suffix });
  edgeClusterId = cluster.id;
  const project = await api.projects.create({ name: "shop" });
  const prod = await api.environments.create({ projectId: project.id, name: "prod", clusterId: edgeClusterId });
  const web = await api.services.create({ environmentId: prod.id, name: "web", config: { git } });
  const apiService = await api.services.create({ environmentId: prod.id, name: "api", config: { git } });
  shop = { projectId: project.id, prodId: prod.id, webId: web.id, apiId: apiService.id };
});

describe("custom domains and generated hostnames", () => {
  it("refuses a custom domain that is another service's hostname, naming it, and any other name under the cluster's suffix", async () => {
    await expect(api.domains.add({ serviceId: shop.apiId, hostname: "web-prod-shop.apps.example.test" })).rejects.toMatchObject({
      code: "CONFLICT",
      message:
        'web-prod-shop.apps.example.test is the hostname of service "web" in environment "prod" of project "shop" on the same cluster, whose requests the router would send here: custom domains cannot be under apps.example.test, where cluster "edge" serves its services at <service>-<environment>-<project>.apps.example.test: choose a name outside it',
    });
    // Written as a user might: the name is compared as it is stored.
    await expect(api.domains.add({ serviceId: shop.apiId, hostname: "Web-Prod-Shop.Apps.Example.Test." })).rejects.toMatchObject({ code: "CONFLICT" });
    // No service has these yet; one created later could be given the first, and the HTTP token
    // check would pass at any of them (the suffix's wildcard points at the router, which answers it).
    for (const hostname of ["later-prod-shop.apps.example.test", "www.shop.apps.example.test"]) {
      await expect(api.domains.add({ serviceId: shop.apiId, hostname, method: "HTTP_TOKEN" })).rejects.toMatchObject({
        code: "BAD_REQUEST",
        message: `${hostname}: custom domains cannot be under apps.example.test, where cluster "edge" serves its services at <service>-<environment>-<project>.apps.example.test: choose a name outside it`,
      });
    }
    expect(await api.domains.list({ serviceId: shop.apiId })).toEqual([]);
    // Outside the suffix, the suffix's own name included (no service's hostname), a domain is taken.
    await api.domains.add({ serviceId: shop.apiId, hostname: "apps.example.test" });
    await api.domains.add({ serviceId: shop.apiId, hostname: "api.example.test" });
    expect((await api.domains.list({ serviceId: shop.apiId })).map((domain) => domain.hostname)).toEqual(["api.example.test", "apps.example.test"]);
  });

  it("does not verify a custom domain under the suffix added before this check", async () => {
    const legacy = await legacyDomain(shop.webId, "api-prod-shop.apps.example.test", false);
    await expect(api.domains.verify({ domainId: legacy.id })).rejects.toMatchObject({
      code: "CONFLICT",
      message: expect.stringContaining('api-prod-shop.apps.example.test is the hostname of service "api" in environment "prod" of project "shop"'),
    });
    const [row] = await services.db.select().from(serviceDomains).where(eq(serviceDomains.id, legacy.id));
    expect(row!.verifiedAt).toBeNull();
    await services.db.delete(serviceDomains).where(eq(serviceDomains.id, legacy.id));
  });

  it("refuses a service or a copy the hostname a custom domain on the cluster has, naming the domain's service", async () => {
    // Served for `web` since before this check: `api-v2` in `prod`, or `api` in `v2-prod`, would be given it.
    const legacy = await legacyDomain(shop.webId, "api-v2-prod-shop.apps.example.test", true);
    await expect(api.services.create({ environmentId: shop.prodId, name: "api-v2", config: { git } })).rejects.toMatchObject({
      code: "CONFLICT",
      message:
        'Service "api-v2" would be served at api-v2-prod-shop.apps.example.test, a custom domain of service "web" in environment "prod" of project "shop" on the same cluster: choose another name for the service, or remove that domain',
    });
    await expect(api.environments.clone({ environmentId: shop.prodId, name: "v2-prod" })).rejects.toMatchObject({
      code: "CONFLICT",
      message:
        'Service "api" would be served at api-v2-prod-shop.apps.example.test, a custom domain of service "web" in environment "prod" of project "shop" on the same cluster: choose another name for the copy, or remove that domain',
    });
    expect((await api.services.list({ environmentId: shop.prodId })).map((service) => service.name)).toEqual(["api", "web"]);
    expect(await services.db.select().from(environments).where(eq(environments.name, "v2-prod"))).toEqual([]);
    // Once the domain is removed, the copy is made.
    await api.domains.remove({ domainId: legacy.id });
    await api.environments.clone({ environmentId: shop.prodId, name: "v2-prod", services: ["api"] });
  });
});

afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/** Gives a domain the ACME certificate a release before this check obtained, expiring in `days`. */
async function withAcmeCertificate(domainId: string, hostname: string, days: number) {
  const { certPem, keyPem } = await selfSignedCertificate({ dir, names: [hostname], days });
  const cipher = await cipherFor(services.db, services.keyring, org.organizationId);
  await services.db
    .update(serviceDomains)
    .set({
      certificateSource: "ACME",
      certificatePem: certPem,
      encryptedPrivateKey: cipher.encrypt(keyPem, keyContext(domainId)),
      certificateNotAfter: new Date(Date.now() + days * 86_400_000),
    })
    .where(eq(serviceDomains.id, domainId));
}

/** The issuance jobs queued for a domain. */
async function issuanceJobs(domainId: string) {
  const { rows } = await services.db.execute(sql`select id from graphile_worker.jobs where key = ${issuanceJobKey(domainId)}`);
  return rows;
}

describe("custom domains under the suffix verified before this check", () => {
  const refusal = (hostname: string) =>
    `${hostname} is under apps.example.test, where cluster "edge" serves its services at <service>-<environment>-<project>.apps.example.test: it was added before such domains were refused, and is not served (it would take the requests of the service whose hostname it is) nor given a certificate. Remove it, and add a name outside apps.example.test`;

  it("are not routed, nor their certificates handed to the router, renewed or issued; their owner sees why, and removes them", async () => {
    // `web` took `api`'s hostname, certificate and all; and a name no service has yet, still without a certificate.
    const takeover = await legacyDomain(shop.webId, "api-prod-shop.apps.example.test", true);
    await withAcmeCertificate(takeover.id, takeover.hostname, 10);
    const spare = await legacyDomain(shop.webId, "www.shop.apps.example.test", true);
    await services.db
      .update(serviceDomains)
      .set({ certificateError: "the CA said no", certificateErrorAt: new Date(Date.now() - 86_400_000) })
      .where(eq(serviceDomains.id, spare.id));
    const outside = await api.domains.add({ serviceId: shop.webId, hostname: "web.example.test" });
    await services.db.update(serviceDomains).set({ verifiedAt: new Date() }).where(eq(serviceDomains.id, outside.id));

    const edge = await edgeStateOf(services, edgeClusterId);
    expect(edge.domains.map((domain) => domain.hostname)).not.toContain(takeover.hostname);
    expect(edge.domains.map((domain) => domain.hostname)).not.toContain(spare.hostname);
    expect(edge.domains.find((domain) => domain.hostname === "web.example.test")).toMatchObject({ serviceId: shop.webId, verified: true });

    // Neither the renewal due in 10 days nor the first certificate's retry is queued; a job queued before is skipped.
    await scheduleRenewals(services);
    expect(await issuanceJobs(takeover.id)).toEqual([]);
    expect(await issuanceJobs(spare.id)).toEqual([]);
    // The domain outside the suffix, verified without a certificate and without a job, is tried again.
    expect(await issuanceJobs(outside.id)).toHaveLength(1);
    expect(await issueCertificate(services, takeover.id)).toEqual({ status: "skipped", reason: refusal(takeover.hostname) });

    const listed = await api.domains.list({ serviceId: shop.webId });
    expect(listed.find((domain) => domain.id === takeover.id)).toMatchObject({
      verified: true,
      refused: refusal(takeover.hostname),
      certificate: { status: "REFUSED", source: "ACME" },
    });
    expect(listed.find((domain) => domain.id === spare.id)).toMatchObject({ refused: refusal(spare.hostname), certificate: { status: "REFUSED" } });
    expect(listed.find((domain) => domain.id === outside.id)).toMatchObject({ refused: null, verified: true });
    // Nothing it could be given would serve it: only its removal is left.
    for (const attempt of [
      () => api.domains.renewCertificate({ domainId: takeover.id }),
      () => api.domains.update({ domainId: takeover.id, redirectHttps: true }),
      () => api.domains.uploadCertificate({ domainId: spare.id, certificatePem: "-", privateKeyPem: "-" }),
    ]) {
      await expect(attempt()).rejects.toMatchObject({ code: "BAD_REQUEST", message: expect.stringContaining("it was added before such domains were refused") });
    }
    expect(await issuanceJobs(takeover.id)).toEqual([]);
    await api.domains.remove({ domainId: takeover.id });
    await api.domains.remove({ domainId: spare.id });
    await api.domains.remove({ domainId: outside.id });
  });
});

describe("generated hostnames DNS would refuse", () => {
  // 27 characters: in environment `prod`, a service's name may have 63 - 2 - 4 - 27 = 30.
  const project = "customer-analytics-platform";
  const fits = "nightly-report-generator-of-eu";
  const tooLong = "nightly-report-generator-for-eu";

  it("refuses a service or a copy whose hostname's first label passes 63 characters, saying how long its name may be", async () => {
    expect([project.length, fits.length, tooLong.length]).toEqual([27, 30, 31]);
    const { id: projectId } = await api.projects.create({ name: project });
    const prod = await api.environments.create({ projectId, name: "prod" });
    await expect(api.services.create({ environmentId: prod.id, name: tooLong, config: { git } })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: `Service "${tooLong}" would be served at ${tooLong}-prod-${project}.localhost, but a DNS name's first label may have at most 63 characters and "${tooLong}-prod-${project}" has 64 (service 31, environment 4, project 27, and two hyphens): with environment "prod" and project "${project}", the service's name may have at most 30 characters`,
    });
    // A database or a job has the hostname too (SLIPWAY_SERVICE_DOMAIN names it).
    await expect(api.services.create({ environmentId: prod.id, name: tooLong, kind: "DATABASE", config: { engine: "postgresql" } })).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
    expect(await api.services.list({ environmentId: prod.id })).toEqual([]);
    // 63 exactly is a DNS label.
    await api.services.create({ environmentId: prod.id, name: fits, config: { git } });

    await expect(api.environments.clone({ environmentId: prod.id, name: "prod-2" })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: `Service "${fits}" would be served at ${fits}-prod-2-${project}.localhost, but a DNS name's first label may have at most 63 characters and "${fits}-prod-2-${project}" has 65 (service 30, environment 6, project 27, and two hyphens): with service "${fits}" and project "${project}", the environment's name may have at most 4 characters`,
    });
    expect(await services.db.select().from(environments).where(eq(environments.name, "prod-2"))).toEqual([]);
    await api.environments.clone({ environmentId: prod.id, name: "eu" });
  });

  it("opens no preview whose services' hostnames DNS would refuse", async () => {
    const { id: projectId } = await api.projects.create({ name: `${project.slice(0, 26)}x` });
    const dev = await api.environments.create({ projectId, name: "dev" });
    // 31 + 3 + 27 + 2 = 63 in `dev`; the preview `pr-7` would make 64.
    await api.services.create({ environmentId: dev.id, name: tooLong, config: { git } });
    await api.git.setPreviewBlueprint({ environmentId: dev.id, enabled: true });
    const { connection } = await createCaller({ services, actor: org.as("ADMIN") }).git.connect({ provider: "generic", name: "generic" });
    const [row] = await services.db.select().from(gitConnections).where(eq(gitConnections.id, connection.id));
    const opened = await onPullRequest(services, row!, openedPullRequest(git.url, 7), await loadCandidates(services.db, org.organizationId));
    // Skipped, saying why (server/webhooks/preview-names.test.ts: the delivery's other previews open).
    expect(opened.previews).toEqual([]);
    expect(opened.skippedBlueprints).toMatchObject([
      { blueprintEnvironmentId: dev.id, reason: expect.stringContaining(`"${tooLong}-pr-7-${project.slice(0, 26)}x", 64 characters`) },
    ]);
    expect(await services.db.select().from(environments).where(eq(environments.mode, "PREVIEW"))).toEqual([]);
  });
});
