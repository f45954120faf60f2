/**
 * Custom domains with automatic TLS (issue 16, part 1), end to end on 127.0.0.1: a real
 * PostgreSQL, the web process with its engine gateway, the worker, a local engine with its
 * router (HTTP and HTTPS ports), and Pebble (Let's Encrypt's ACME test server) resolving names
 * through pebble-challtestsrv's mock DNS, which the control plane's checks use too.
 */
import { X509Certificate } from "node:crypto";
import fs from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { and, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Services } from "../../server/context";
import { auditEvents, notificationDeliveries, serviceDomains } from "../../server/db/schema";
import { issueCertificate, scheduleRenewals } from "../../server/domains/acme";
import { defaultDomainSettings } from "../../server/domains/settings";
import type { TestDatabase } from "../database";
import { eventually, request } from "../engine-harness";
import {
  domainsHost,
  httpsGet as httpsGetThrough,
  removeDomainsHost,
  startDomainsPlatform,
  type DomainsHost,
  type DomainsPlatform,
} from "../support/domains-platform";
import { pebbleMissing, startPebble, type Pebble } from "../support/pebble";
import { selfSignedCertificate } from "../support/self-signed";

const missing = await pebbleMissing();

let host: DomainsHost;
let pebble: Pebble;
let platform: DomainsPlatform;
let database: TestDatabase;
let services: Services;
let serviceId: string;
let routerPort: number;
let httpsPort: number;
/** Moves the control plane's clock (renewals), not the processes'. */
let clockOffsetMs = 0;

const developer = () => platform.developer();
const httpsGet = (servername: string, ca: string) => httpsGetThrough(httpsPort, servername, ca);

async function domainNamed(hostname: string) {
  return (await developer().domains.list({ serviceId })).find((domain) => domain.hostname === hostname)!;
}

beforeAll(async () => {
  if (missing) return;
  host = await domainsHost();
  ({ routerPort, httpsPort } = host);
  pebble = await startPebble({ httpPort: routerPort });
  platform = await startDomainsPlatform(host, {
    organization: "domains",
    service: "web",
    overrides: {
      now: () => new Date(Date.now() + clockOffsetMs),
      // The renewal-failure notification goes to a receiver on 127.0.0.1.
      notifications: { allowPrivateTargets: true, engineDisconnectGraceMs: 60_000 },
      domains: {
        dnsServers: [pebble.dnsServer],
        httpPort: routerPort,
        checkTimeoutMs: 5_000,
        acme: { ...defaultDomainSettings.acme, directoryUrl: pebble.directoryUrl, caPem: pebble.directoryCa, challengeWaitMs: 3_000 },
      },
    },
  });
  ({ database, services, serviceId } = platform);
}, 120_000);

afterAll(async () => {
  if (missing) return;
  await platform?.stop();
  await pebble?.stop();
  await removeDomainsHost(host);
});

describe.skipIf(missing)("custom domains", () => {
  it("verifies an HTTP token served by the router, issues a certificate from Pebble and serves HTTPS by SNI", async () => {
    const added = await developer().domains.add({ serviceId, hostname: "Shop.Example.test", method: "HTTP_TOKEN" });
    expect(added.hostname).toBe("shop.example.test");
    expect(added.certificate.status).toBe("AWAITING_VERIFICATION");
    expect(added.httpToken?.url).toBe(`http://shop.example.test/.well-known/slipway-verification/${added.httpToken?.body}`);
    // Unverified: not served, but the router answers the token once the engine pulled it.
    expect((await request(routerPort, "shop.example.test")).status).toBe(404);
    await eventually(async () => (await request(routerPort, "shop.example.test", new URL(added.httpToken!.url).pathname)).body === added.httpToken!.body);

    const verified = await developer().domains.verify({ domainId: added.id });
    expect(verified.verified).toBe(true);
    expect(verified.checkError).toBeNull();
    const active = await eventually(
      async () => {
        const domain = await domainNamed("shop.example.test");
        if (domain.certificate.status === "FAILED") throw new Error(domain.certificate.error ?? "failed");
        return domain.certificate.status === "ACTIVE" ? domain : null;
      },
      90_000,
      "the certificate",
    );
    expect(active.certificate.source).toBe("ACME");

    const root = await pebble.root();
    const secure = await eventually(() => httpsGet("shop.example.test", root).catch(() => null), 15_000, "HTTPS through the router");
    expect(secure.status).toBe(200);
    expect(secure.body).toBe("web answered shop.example.test over https");
    expect(secure.certificate.checkHost("shop.example.test")).toBe("shop.example.test");
    // Plain HTTP now redirects; the generated *.localhost name stays plain HTTP.
    const plain = await new Promise<http.IncomingMessage>((resolve, reject) =>
      http.get({ host: "127.0.0.1", port: routerPort, path: "/cart?x=1", headers: { host: "shop.example.test" }, agent: false }, resolve).on("error", reject),
    );
    expect(plain.statusCode).toBe(308);
    expect(plain.headers.location).toBe(`https://shop.example.test:${httpsPort}/cart?x=1`);
    expect((await request(routerPort, "web-production-shop.localhost")).body).toBe("web answered web-production-shop.localhost over http");
    // A name without a certificate gets no handshake.
    await expect(httpsGet("web-production-shop.localhost", root)).rejects.toThrow();

    const [stored] = await database.db.select().from(serviceDomains).where(eq(serviceDomains.id, added.id));
    expect(stored!.encryptedPrivateKey).not.toContain("PRIVATE KEY");
    const actions = (await database.db.select().from(auditEvents).where(eq(auditEvents.targetId, serviceId))).map((event) => event.action);
    expect(actions).toEqual(expect.arrayContaining(["domain.add", "domain.verify", "certificate.issue"]));
  }, 180_000);

  it("renews a certificate within 30 days of its expiry", async () => {
    const before = await domainNamed("shop.example.test");
    const root = await pebble.root();
    const served = (await httpsGet("shop.example.test", root)).certificate.serialNumber;
    expect(await scheduleRenewals(services)).toBe(0);
    clockOffsetMs = new Date(before.certificate.notAfter!).getTime() - Date.now() - 20 * 86_400_000;
    try {
      expect(await scheduleRenewals(services)).toBe(1);
      await eventually(async () => (await httpsGet("shop.example.test", root)).certificate.serialNumber !== served, 60_000, "the renewed certificate served");
    } finally {
      clockOffsetMs = 0;
    }
    const [renewal] = await database.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.targetId, serviceId), eq(auditEvents.action, "certificate.renew")));
    expect(renewal).toBeDefined();
  }, 180_000);

  it("records a failed renewal on the domain, keeps serving the certificate it has, and notifies", async () => {
    const { id: projectId } = (await developer().projects.list({})).find((project) => project.name === "shop")!;
    await developer().notifications.create({
      projectId,
      name: "certificates",
      events: ["certificate.renewal_failed"],
      channel: { type: "webhook", url: "http://127.0.0.1:9/hook" },
    });
    const before = await domainNamed("shop.example.test");
    const root = await pebble.root();
    const served = (await httpsGet("shop.example.test", root)).certificate.serialNumber;
    // The name now points where no router listens: the CA cannot fetch the challenge.
    await pebble.setA("shop.example.test", "127.0.0.2");
    clockOffsetMs = new Date(before.certificate.notAfter!).getTime() - Date.now() - 10 * 86_400_000;
    try {
      expect(await scheduleRenewals(services)).toBe(1);
      const failed = await eventually(
        async () => {
          const domain = await domainNamed("shop.example.test");
          return domain.certificate.error ? domain : null;
        },
        90_000,
        "the renewal's failure",
      );
      expect(failed.certificate.status).toBe("ACTIVE");
      expect(failed.certificate.error).toMatch(/127\.0\.0\.2/);
    } finally {
      clockOffsetMs = 0;
    }
    expect((await httpsGet("shop.example.test", root)).certificate.serialNumber).toBe(served);
    const deliveries = await database.db.select().from(notificationDeliveries).where(eq(notificationDeliveries.event, "certificate.renewal_failed"));
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]!.payload.text).toContain("the certificate of shop.example.test (web) could not be renewed");
  }, 180_000);

  it("verifies by a DNS TXT record, explaining what is missing until it is published", async () => {
    const added = await developer().domains.add({ serviceId, hostname: "txt.example.test", method: "DNS_TXT" });
    expect(added.txtRecord).toEqual({ name: "_slipway-verification.txt.example.test", value: expect.stringMatching(/^slipway-verification=/) });
    const missingRecord = await developer().domains.verify({ domainId: added.id });
    expect(missingRecord.verified).toBe(false);
    expect(missingRecord.checkError).toMatch(/_slipway-verification\.txt\.example\.test/);
    await pebble.setTxt(added.txtRecord!.name, added.txtRecord!.value);
    const verified = await developer().domains.verify({ domainId: added.id });
    expect(verified.verified).toBe(true);
  }, 60_000);

  it("records the CA's error when the challenge fails", async () => {
    const added = await developer().domains.add({ serviceId, hostname: "elsewhere.example.test", method: "DNS_TXT" });
    await pebble.setTxt(added.txtRecord!.name, added.txtRecord!.value);
    // The name points at an address where no router listens: Pebble cannot fetch the challenge.
    await pebble.setA("elsewhere.example.test", "127.0.0.2");
    expect((await developer().domains.verify({ domainId: added.id })).verified).toBe(true);
    const failed = await eventually(
      async () => {
        const domain = await domainNamed("elsewhere.example.test");
        return domain.certificate.status === "FAILED" ? domain : null;
      },
      90_000,
      "the failure",
    );
    expect(failed.certificate.error).toMatch(/127\.0\.0\.2/);
    expect(failed.certificate.errorAt).not.toBeNull();
  }, 180_000);
  it("tries a failed first certificate again after a wait, and issues it once the name points at the router", async () => {
    expect((await domainNamed("elsewhere.example.test")).certificate.status).toBe("FAILED");
    const retries = async () =>
      (await database.db.select().from(auditEvents).where(eq(auditEvents.action, "certificate.retry"))).filter(
        (event) => event.changes?.hostname === "elsewhere.example.test",
      ).length;
    // Just failed: the next try waits an hour.
    await scheduleRenewals(services);
    expect(await retries()).toBe(0);
    // Meanwhile its owner points the name at the router (the mock DNS's default answer once its own A record goes).
    const cleared = await fetch(`${pebble.dnsManagementUrl}/clear-a`, { method: "POST", body: JSON.stringify({ host: "elsewhere.example.test." }) });
    expect(cleared.ok).toBe(true);
    clockOffsetMs = 3_600_000 + 60_000;
    try {
      await scheduleRenewals(services);
      expect(await retries()).toBe(1);
      const active = await eventually(
        async () => {
          const domain = await domainNamed("elsewhere.example.test");
          if (domain.certificate.status !== "ACTIVE") throw new Error(`${domain.certificate.errorAt}: ${domain.certificate.error}`);
          return domain;
        },
        60_000,
        "the certificate of the retry",
      );
      expect(active.certificate).toMatchObject({ source: "ACME", error: null });
    } finally {
      clockOffsetMs = 0;
    }
    const root = await pebble.root();
    const secure = await eventually(() => httpsGet("elsewhere.example.test", root).catch(() => null), 15_000, "HTTPS through the router");
    expect(secure.certificate.checkHost("elsewhere.example.test")).toBe("elsewhere.example.test");
  }, 180_000);

  it("keeps a certificate its owner uploads while an issuance is under way", async () => {
    const added = await developer().domains.add({ serviceId, hostname: "race.example.test", method: "DNS_TXT" });
    // Verified without queuing the worker's issuance: this test runs it, to upload in its midst.
    await database.db.update(serviceDomains).set({ verifiedAt: new Date() }).where(eq(serviceDomains.id, added.id));
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-race-"));
    const own = await selfSignedCertificate({ dir, names: ["race.example.test"], days: 30 }).finally(() => fs.rm(dir, { recursive: true, force: true }));
    const challengeOut = async () =>
      (await database.db.select({ challenge: serviceDomains.acmeChallenge }).from(serviceDomains).where(eq(serviceDomains.id, added.id)))[0]?.challenge;

    const issuance = issueCertificate(services, added.id);
    // The HTTP-01 challenge is out: the CA validates it next, then the certificate is stored.
    while (!(await challengeOut())) await sleep(10);
    await developer().domains.uploadCertificate({ domainId: added.id, certificatePem: own.certPem, privateKeyPem: own.keyPem });
    expect(await issuance).toMatchObject({ status: "skipped" });

    expect((await domainNamed("race.example.test")).certificate).toMatchObject({ source: "UPLOADED", status: "ACTIVE", error: null });
    const served = await eventually(() => httpsGet("race.example.test", own.certPem).catch(() => null), 15_000, "the uploaded certificate served");
    expect(served.certificate.fingerprint256).toBe(new X509Certificate(own.certPem).fingerprint256);
  }, 120_000);
});
