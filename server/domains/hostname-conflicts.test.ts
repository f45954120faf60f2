/**
 * Custom domains against generated hostnames, on a real PostgreSQL. The router serves a verified
 * custom domain's service before a generated hostname's, and answers a domain's HTTP token at any
 * name the cluster's wildcard record points at it: a custom domain under the cluster's domain
 * suffix would take another service's requests. Such domains are refused, and a service is refused
 * the hostname of one added before this check. A generated hostname's first label DNS would
 * refuse (more than 63 characters) is refused however the service comes to be.
 */
import { randomBytes } from "node:crypto";
import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { openedPullRequest } from "../../test/support/webhooks";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { environments, gitConnections, serviceDomains } from "../db/schema";
import { loadCandidates } from "../webhooks/candidates";
import { onPullRequest } from "../webhooks/previews";

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

beforeAll(async () => {
  services = testServices((await createTestDatabase()).db);
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
