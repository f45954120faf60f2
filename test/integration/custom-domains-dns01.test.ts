/**
 * ACME DNS-01 through a DNS provider's API (issue 16, part 1), end to end on 127.0.0.1: a real
 * PowerDNS Authoritative serving the zone (its HTTP API on one port, DNS on another), Pebble
 * resolving through that PowerDNS, a real PostgreSQL, the web process, the worker issuing
 * through its task, and a local engine whose router serves the certificate by SNI.
 */
import { eq, sql } from "drizzle-orm";
import { testPort } from "../support/ports";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCaller } from "../../server/api/root";
import type { Services } from "../../server/context";
import { auditEvents, dnsProviders } from "../../server/db/schema";
import { defaultDomainSettings } from "../../server/domains/settings";
import { issuanceJobKey } from "../../server/domains/domains";
import type { TestDatabase } from "../database";
import { eventually } from "../engine-harness";
import {
  domainsHost,
  httpsGet as httpsGetThrough,
  removeDomainsHost,
  startDomainsPlatform,
  type DomainsHost,
  type DomainsPlatform,
} from "../support/domains-platform";
import { pebbleMissing, startPebble, type Pebble } from "../support/pebble";
import { powerDnsMissing, startPowerDns, type PowerDns } from "../support/powerdns";
import { skipWithout } from "../support/requirements";
import type { SeededOrganization } from "../support/seed";

const skip = skipWithout((await pebbleMissing()) ?? (await powerDnsMissing()));
const FIRST_KEY = "pdns-key-first-0123456789abcdef";
const ROTATED_KEY = "pdns-key-rotated-fedcba9876543210";

let host: DomainsHost;
let pdns: PowerDns;
let pebble: Pebble;
let platform: DomainsPlatform;
let database: TestDatabase;
let services: Services;
let org: SeededOrganization;
let serviceId: string;
/** The root Pebble signs under: the only CA the HTTPS requests trust. */
let pebbleRoot: string;

const admin = () => createCaller({ services, actor: org.as("ADMIN") });
const developer = () => platform.developer();
const httpsGet = (servername: string, ca: string) => httpsGetThrough(host.httpsPort, servername, ca);

async function domainNamed(hostname: string) {
  return (await developer().domains.list({ serviceId })).find((domain) => domain.hostname === hostname)!;
}

/**
 * Waits until no issuance of the domain is queued or running: a renewal a test asks for must be
 * the only one, or issuanceEnded could see the end of one asked for before it (a verification
 * queues one, and one asked for while another runs runs after it).
 */
async function noIssuancePending(domainId: string) {
  await eventually(
    async () => (await database.db.execute(sql`select 1 from graphile_worker.jobs where key = ${issuanceJobKey(domainId)}`)).rows.length === 0,
    90_000,
    "no issuance of the domain pending",
  );
}

/** Waits for the domain's issuance to end: an error recorded after `since`, or a certificate other than the one expiring at `previousNotAfter`. */
async function issuanceEnded(hostname: string, since: Date, previousNotAfter: string | null) {
  return eventually(
    async () => {
      const domain = await domainNamed(hostname);
      if (domain.certificate.errorAt && new Date(domain.certificate.errorAt) >= since) return domain;
      if (domain.certificate.status === "ACTIVE" && domain.certificate.notAfter !== previousNotAfter && !domain.certificate.error) return domain;
      return null;
    },
    90_000,
    `the issuance for ${hostname}`,
  );
}

beforeAll(async () => {
  if (skip) return;
  host = await domainsHost();
  pdns = await startPowerDns({ zone: "example.test", apiKey: FIRST_KEY });
  // HTTP-01 is not offered a way in: the router's HTTP port is not where Pebble would look.
  pebble = await startPebble({ httpPort: await testPort(), dnsServer: pdns.dnsServer });
  pebbleRoot = await pebble.root();
  platform = await startDomainsPlatform(host, {
    organization: "dns01",
    service: "api",
    overrides: {
      domains: {
        dnsServers: [pdns.dnsServer],
        httpPort: host.routerPort,
        checkTimeoutMs: 5_000,
        acme: {
          ...defaultDomainSettings.acme,
          directoryUrl: pebble.directoryUrl,
          caPem: pebble.directoryCa,
          challengeWaitMs: 3_000,
          dnsPropagationWaitMs: 5_000,
        },
      },
    },
  });
  ({ database, services, org, serviceId } = platform);
}, 120_000);

afterAll(async () => {
  if (skip) return;
  await platform?.stop();
  await pebble?.stop();
  await pdns?.stop();
  await removeDomainsHost(host);
});

const powerDnsSettings = () => ({ kind: "POWERDNS" as const, apiUrl: pdns.apiUrl, nameserver: pdns.dnsServer });

describe.skipIf(skip)("ACME DNS-01 through PowerDNS", () => {
  it("refuses a token or a zone PowerDNS rejects, saving nothing", async () => {
    await expect(admin().dnsProviders.create({ name: "main", zone: "example.test", settings: powerDnsSettings(), token: "not-the-key" })).rejects.toThrow(
      /the token was not saved: PowerDNS at http:\/\/127\.0\.0\.1:\d+ \(DNS provider "main"\) refused the API key \(401\)/,
    );
    await expect(admin().dnsProviders.create({ name: "main", zone: "other.test", settings: powerDnsSettings(), token: FIRST_KEY })).rejects.toThrow(
      /has no zone other\.test on server "localhost"/,
    );
    // A developer may use providers, not hold their tokens.
    await expect(developer().dnsProviders.create({ name: "main", zone: "example.test", settings: powerDnsSettings(), token: FIRST_KEY })).rejects.toThrow();
    expect(await admin().dnsProviders.list({})).toEqual([]);
  });

  it("issues a certificate by DNS-01, serves it by SNI, and removes the TXT record", async () => {
    const provider = await admin().dnsProviders.create({ name: "main", zone: "example.test", settings: powerDnsSettings(), token: FIRST_KEY });
    expect(provider.tokenHint).toBe("…cdef");
    expect(JSON.stringify(await developer().dnsProviders.list({}))).not.toContain(FIRST_KEY);
    const [sealed] = await database.db.select().from(dnsProviders).where(eq(dnsProviders.id, provider.id));
    expect(sealed!.encryptedToken).not.toContain(FIRST_KEY);

    await expect(developer().domains.add({ serviceId, hostname: "api.elsewhere.test", challenge: "DNS_01", dnsProviderId: provider.id })).rejects.toThrow(
      "api.elsewhere.test is not in the zone example.test of the DNS provider main",
    );
    const added = await developer().domains.add({
      serviceId,
      hostname: "api.example.test",
      method: "DNS_TXT",
      challenge: "DNS_01",
      dnsProviderId: provider.id,
    });
    expect(added.challenge).toEqual({ type: "DNS_01", dnsProviderId: provider.id });
    await pdns.setTxt(added.txtRecord!.name, added.txtRecord!.value);
    const since = new Date();
    expect((await developer().domains.verify({ domainId: added.id })).verified).toBe(true);
    const issued = await issuanceEnded("api.example.test", since, null);
    expect(issued.certificate.error).toBeNull();
    expect(issued.certificate.status).toBe("ACTIVE");

    const secure = await eventually(() => httpsGet("api.example.test", pebbleRoot).catch(() => null), 15_000, "HTTPS through the router");
    expect(secure.status).toBe(200);
    expect(secure.body).toBe("api answered api.example.test over https");
    expect(secure.certificate.checkHost("api.example.test")).toBe("api.example.test");
    expect(await pdns.txt("_acme-challenge.api.example.test")).toEqual([]);
    const actions = (await database.db.select().from(auditEvents)).map((event) => event.action);
    expect(actions).toEqual(expect.arrayContaining(["dns_provider.create", "domain.add", "certificate.issue"]));
  }, 180_000);

  it("removes the TXT record when the challenge fails, and says why on the domain", async () => {
    const [provider] = await admin().dnsProviders.list({});
    await noIssuancePending((await domainNamed("api.example.test")).id);
    const served = (await httpsGet("api.example.test", pebbleRoot)).certificate.serialNumber;
    // The record is published, but the nameserver the propagation check asks does not answer.
    const silent = `127.0.0.1:${await testPort()}`;
    await admin().dnsProviders.update({ dnsProviderId: provider!.id, settings: { ...powerDnsSettings(), nameserver: silent } });
    const before = await domainNamed("api.example.test");
    const since = new Date();
    await developer().domains.renewCertificate({ domainId: before.id });
    const failed = await issuanceEnded("api.example.test", since, before.certificate.notAfter);
    expect(failed.certificate.error).toContain(`the TXT record at _acme-challenge.api.example.test did not show on the zone's nameserver ${silent}`);
    expect(failed.certificate.status).toBe("ACTIVE");
    expect(await pdns.txt("_acme-challenge.api.example.test")).toEqual([]);
    expect((await httpsGet("api.example.test", pebbleRoot)).certificate.serialNumber).toBe(served);
    await admin().dnsProviders.update({ dnsProviderId: provider!.id, settings: powerDnsSettings() });
  }, 180_000);

  it("a key rotated at PowerDNS fails the renewal with a clear error, keeps the certificate, and works again with the new key", async () => {
    const [provider] = await admin().dnsProviders.list({});
    await noIssuancePending((await domainNamed("api.example.test")).id);
    const before = await domainNamed("api.example.test");
    const served = (await httpsGet("api.example.test", pebbleRoot)).certificate.serialNumber;
    await pdns.restart(ROTATED_KEY);

    let since = new Date();
    await developer().domains.renewCertificate({ domainId: before.id });
    const failed = await issuanceEnded("api.example.test", since, before.certificate.notAfter);
    expect(failed.certificate.error).toMatch(/PowerDNS at http:\/\/127\.0\.0\.1:\d+ \(DNS provider "main"\) refused the API key \(401\)/);
    expect(failed.certificate.status).toBe("ACTIVE");
    expect((await httpsGet("api.example.test", pebbleRoot)).certificate.serialNumber).toBe(served);

    const updated = await admin().dnsProviders.update({ dnsProviderId: provider!.id, token: ROTATED_KEY });
    expect(updated.tokenHint).toBe("…3210");
    since = new Date();
    await developer().domains.renewCertificate({ domainId: before.id });
    const renewed = await issuanceEnded("api.example.test", since, failed.certificate.notAfter);
    expect(renewed.certificate.error).toBeNull();
    await eventually(
      async () => (await httpsGet("api.example.test", pebbleRoot)).certificate.serialNumber !== served,
      15_000,
      "the renewed certificate served",
    );
    expect(await pdns.txt("_acme-challenge.api.example.test")).toEqual([]);
    const [audit] = await database.db.select().from(auditEvents).where(eq(auditEvents.action, "dns_provider.update"));
    expect(JSON.stringify(audit!.changes)).not.toContain(ROTATED_KEY);
  }, 180_000);

  it("keeps a provider that domains use, and lets a domain go back to HTTP-01", async () => {
    const [provider] = await admin().dnsProviders.list({});
    await expect(admin().dnsProviders.remove({ dnsProviderId: provider!.id })).rejects.toThrow(
      "main issues the certificates of api.example.test: switch them to HTTP-01 or another provider first",
    );
    const domain = await domainNamed("api.example.test");
    const switched = await developer().domains.update({ domainId: domain.id, challenge: "HTTP_01" });
    expect(switched.challenge).toEqual({ type: "HTTP_01", dnsProviderId: null });
    await admin().dnsProviders.remove({ dnsProviderId: provider!.id });
    expect(await admin().dnsProviders.list({})).toEqual([]);
  });
});
