/**
 * Custom domains under the cluster's domain suffix that a release before the check verified
 * (server/domains/refusal.ts), end to end on 127.0.0.1: a real PostgreSQL, the web process with
 * its engine gateway, the worker, and a local engine whose router pulls the edge state. Such a
 * domain took the requests of the service whose generated hostname it is; now the router is not
 * given it at all.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serviceDomains } from "../../server/db/schema";
import { announceEdgeChange } from "../../server/domains/domains";
import { eventually, request } from "../engine-harness";
import { domainsHost, removeDomainsHost, startDomainsPlatform, type DomainsHost, type DomainsPlatform } from "../support/domains-platform";

let host: DomainsHost;
let platform: DomainsPlatform;

beforeAll(async () => {
  host = await domainsHost();
  // The cluster's domain suffix is localhost: `web` is served at web-production-shop.localhost.
  platform = await startDomainsPlatform(host, { organization: "refused-domains", service: "web", overrides: {} });
}, 120_000);

afterAll(async () => {
  await platform?.stop();
  await removeDomainsHost(host);
});

describe("a custom domain under the cluster's suffix, verified before it was refused", () => {
  it("no longer takes the requests of the service whose hostname it is, nor is served itself", async () => {
    const { services, org, serviceId: webId } = platform;
    const environmentId = (await platform.developer().services.get({ serviceId: webId })).environmentId;
    const other = await platform.developer().services.create({
      environmentId,
      name: "other",
      config: { git: { url: "https://github.com/acme/shop.git", ref: { branch: "main" } } },
    });
    const legacy = (serviceId: string, hostname: string) => ({
      organizationId: org.organizationId,
      serviceId,
      hostname,
      verificationMethod: "HTTP_TOKEN" as const,
      verificationToken: randomBytes(24).toString("base64url"),
      verifiedAt: new Date(),
    });
    await services.db.transaction(async (tx) => {
      await tx.insert(serviceDomains).values([
        // `other` took `web`'s generated hostname; `web` a name under the suffix no service has.
        legacy(other.id, "web-production-shop.localhost"),
        legacy(webId, "www.localhost"),
        // Outside the suffix: served, which shows the router pulled this state.
        legacy(webId, "shop.example.test"),
      ]);
      await announceEdgeChange(tx, org.clusterId);
    });

    await eventually(
      async () => (await request(host.routerPort, "shop.example.test")).body === "web answered shop.example.test over http",
      15_000,
      "the edge state",
    );
    expect((await request(host.routerPort, "web-production-shop.localhost")).body).toBe("web answered web-production-shop.localhost over http");
    expect((await request(host.routerPort, "www.localhost")).status).toBe(404);
  }, 60_000);
});
