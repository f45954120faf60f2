/**
 * Custom domains' rules on a real PostgreSQL (issue 16, part 1): who may change them, what
 * another organization sees, one verified owner per name, uploads checked, and what the
 * cluster's engine receives. The checks themselves run against DNS and HTTP in
 * test/integration/custom-domains.test.ts.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { selfSignedCertificate } from "../../test/support/self-signed";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { auditEvents, serviceDomains } from "../db/schema";
import { scheduleRenewals } from "./acme";
import { issuanceJobKey } from "./domains";
import { edgeStateOf } from "./edge-state";
import { INTERRUPTED } from "./issuance-retries";

let services: Services;
let org: SeededOrganization;
let other: SeededOrganization;
let dir: string;
let webId: string;
let apiId: string;
/** Moves the control plane's clock (the scheduler's waits between retries). */
let clockOffsetMs = 0;

const as = (seeded: SeededOrganization, role: "VIEWER" | "DEVELOPER") => createCaller({ services, actor: seeded.as(role) });

async function selfSigned(hostname: string, days: number): Promise<{ certificatePem: string; privateKeyPem: string }> {
  const { certPem, keyPem } = await selfSignedCertificate({ dir, names: [hostname], days });
  return { certificatePem: certPem, privateKeyPem: keyPem };
}

async function markVerified(domainId: string) {
  await services.db.update(serviceDomains).set({ verifiedAt: new Date() }).where(eq(serviceDomains.id, domainId));
}

async function webService(seeded: SeededOrganization, project: string) {
  const developer = as(seeded, "DEVELOPER");
  const { id: projectId } = await developer.projects.create({ name: project });
  const { id: environmentId } = await developer.environments.create({ projectId, name: "prod" });
  const git = { url: "https://github.com/acme/shop.git", ref: { branch: "main" } };
  const web = await developer.services.create({ environmentId, name: "web", config: { git } });
  const api = await developer.services.create({ environmentId, name: "api", config: { git } });
  return { webId: web.id, apiId: api.id };
}

beforeAll(async () => {
  const database = await createTestDatabase();
  services = testServices(database.db, { now: () => new Date(Date.now() + clockOffsetMs) });
  org = await seedOrganization(services, "domains-rules");
  other = await seedOrganization(services, "domains-other");
  ({ webId, apiId } = await webService(org, "shop"));
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-domain-rules-"));
});

afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe("custom domains", () => {
  it("lets a viewer read them and not change them; another organization sees nothing", async () => {
    const added = await as(org, "DEVELOPER").domains.add({ serviceId: webId, hostname: "viewer.example.test" });
    expect((await as(org, "VIEWER").domains.list({ serviceId: webId })).map((d) => d.hostname)).toContain("viewer.example.test");
    await expect(as(org, "VIEWER").domains.add({ serviceId: webId, hostname: "nope.example.test" })).rejects.toMatchObject({ code: "FORBIDDEN" });
    await expect(as(other, "DEVELOPER").domains.list({ serviceId: webId })).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(as(other, "DEVELOPER").domains.verify({ domainId: added.id })).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(as(other, "DEVELOPER").domains.remove({ domainId: added.id })).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("gives a verified name to one service only, and refuses the same name twice on a service", async () => {
    const first = await as(org, "DEVELOPER").domains.add({ serviceId: webId, hostname: "taken.example.test" });
    await expect(as(org, "DEVELOPER").domains.add({ serviceId: webId, hostname: "TAKEN.example.test." })).rejects.toMatchObject({ code: "CONFLICT" });
    // Claimed but unverified elsewhere: anyone may claim it too, only one verifies.
    const { webId: theirs } = await webService(other, "their-shop");
    await as(other, "DEVELOPER").domains.add({ serviceId: theirs, hostname: "taken.example.test" });
    await markVerified(first.id);
    await expect(as(other, "DEVELOPER").domains.add({ serviceId: theirs, hostname: "taken.example.test" })).rejects.toMatchObject({ code: "CONFLICT" });
    await expect(as(org, "DEVELOPER").domains.add({ serviceId: apiId, hostname: "taken.example.test" })).rejects.toMatchObject({
      message: "taken.example.test is already served by another service",
    });
  });

  it("checks an uploaded certificate against the domain, its key and its dates, and never returns the key", async () => {
    const added = await as(org, "DEVELOPER").domains.add({ serviceId: webId, hostname: "upload.example.test" });
    const own = await selfSigned("upload.example.test", 30);
    const otherName = await selfSigned("elsewhere.example.test", 30);
    const upload = (input: { certificatePem: string; privateKeyPem: string }) =>
      as(org, "DEVELOPER").domains.uploadCertificate({ domainId: added.id, ...input });
    await expect(upload(otherName)).rejects.toThrow("not upload.example.test");
    await expect(upload({ certificatePem: own.certificatePem, privateKeyPem: otherName.privateKeyPem })).rejects.toThrow(
      "the private key does not belong to the certificate",
    );
    await expect(upload({ certificatePem: "hello", privateKeyPem: own.privateKeyPem })).rejects.toThrow("not a PEM X.509 certificate");
    const saved = await upload(own);
    expect(saved.certificate).toMatchObject({ source: "UPLOADED", status: "AWAITING_VERIFICATION" });
    expect(JSON.stringify(saved)).not.toContain("PRIVATE KEY");
    const [audit] = await services.db.select().from(auditEvents).where(eq(auditEvents.action, "certificate.upload"));
    expect(JSON.stringify(audit!.changes)).not.toContain("PRIVATE KEY");
  });

  it("hands the cluster's engine its domains: keys opened, tokens of unverified HTTP domains only", async () => {
    const http = await as(org, "DEVELOPER").domains.add({ serviceId: apiId, hostname: "token.example.test", method: "HTTP_TOKEN" });
    const upload = (await as(org, "DEVELOPER").domains.list({ serviceId: webId })).find((d) => d.hostname === "upload.example.test")!;
    await markVerified(upload.id);
    const edge = await edgeStateOf(services, org.clusterId);
    const byName = new Map(edge.domains.map((domain) => [domain.hostname, domain]));
    expect(byName.get("token.example.test")).toMatchObject({ verified: false, verificationToken: http.httpToken!.body, certificate: null });
    expect(byName.get("upload.example.test")?.certificate?.keyPem).toContain("PRIVATE KEY");
    expect(byName.get("viewer.example.test")?.verificationToken).toBeNull();
    expect(edge.domains.every((domain) => domain.hostname !== "taken.example.test" || domain.serviceId === webId)).toBe(true);
    // The other organization's cluster gets its own domains only.
    expect((await edgeStateOf(services, other.clusterId)).domains.map((domain) => domain.hostname)).toEqual(["taken.example.test"]);
  });

  it("audits additions, changes and removals", async () => {
    const added = await as(org, "DEVELOPER").domains.add({ serviceId: webId, hostname: "audited.example.test" });
    await as(org, "DEVELOPER").domains.update({ domainId: added.id, redirectHttps: false });
    await as(org, "DEVELOPER").domains.remove({ domainId: added.id });
    const actions = (await services.db.select().from(auditEvents).where(eq(auditEvents.targetId, webId)).orderBy(auditEvents.id))
      .filter((event) => (event.changes as { hostname?: string } | null)?.hostname === "audited.example.test")
      .map((event) => event.action);
    expect(actions).toEqual(["domain.add", "domain.update", "domain.remove"]);
  });
  it("tries again a first certificate a dead worker left unfinished, waiting longer each time, and gives up after 5 attempts, saying why", async () => {
    const added = await as(org, "DEVELOPER").domains.add({ serviceId: apiId, hostname: "stuck.example.test" });
    // Verified, its issuance taken by a worker that died with a challenge out: the job (one
    // attempt) is left out of attempts, and nothing was recorded on the domain.
    await services.db
      .update(serviceDomains)
      .set({ verifiedAt: new Date(), acmeChallenge: { token: "stale", keyAuthorization: "stale.key" } })
      .where(eq(serviceDomains.id, added.id));
    const jobOf = async () =>
      (
        await services.db.execute<{ attempts: number; max_attempts: number }>(
          sql`select attempts, max_attempts from graphile_worker.jobs where key = ${issuanceJobKey(added.id)}`,
        )
      ).rows[0];
    const workerDies = () => services.db.execute(sql`update graphile_worker._private_jobs set attempts = max_attempts where key = ${issuanceJobKey(added.id)}`);
    // Other verified domains of this file without a certificate are retried too: only this one's tries count.
    const retries = async () =>
      (await services.db.select().from(auditEvents).where(eq(auditEvents.action, "certificate.retry")).orderBy(auditEvents.id))
        .filter((event) => event.changes?.hostname === "stuck.example.test")
        .map((event) => event.changes?.attempt);
    const tries = async () => {
      await scheduleRenewals(services);
      return (await retries()).length;
    };
    const shown = async () => (await as(org, "VIEWER").domains.list({ serviceId: apiId })).find((domain) => domain.id === added.id)!;
    expect((await shown()).certificate.status).toBe("ISSUING");

    try {
      expect(await tries()).toBe(1);
      expect(await jobOf()).toMatchObject({ attempts: 0 });
      expect((await shown()).certificate).toMatchObject({ status: "FAILED", error: INTERRUPTED });
      const [domain] = await services.db.select().from(serviceDomains).where(eq(serviceDomains.id, added.id));
      expect(domain!.acmeChallenge).toBeNull();
      // Queued or running: not asked twice.
      expect(await tries()).toBe(1);

      // Each retry waits longer: 4 h, 16 h, then 64 h after the one before.
      for (const [index, waitHours] of [4, 16, 64].entries()) {
        await workerDies();
        clockOffsetMs += (waitHours - 1) * 3_600_000;
        expect(await tries()).toBe(index + 1);
        clockOffsetMs += 3_600_000;
        expect(await tries()).toBe(index + 2);
      }
      await workerDies();
      clockOffsetMs += 365 * 86_400_000;
      expect(await tries()).toBe(4);
      const gaveUp = (await shown()).certificate;
      expect(gaveUp).toMatchObject({ status: "FAILED", error: `${INTERRUPTED}; gave up after 5 attempts: renew the certificate to try again` });
      expect(await tries()).toBe(4);
      expect((await shown()).certificate).toEqual(gaveUp);

      // A renew asked for by a member starts the count again.
      await as(org, "DEVELOPER").domains.renewCertificate({ domainId: added.id });
      await workerDies();
      clockOffsetMs += 3_600_000;
      expect(await tries()).toBe(5);
      expect((await shown()).certificate.error).toBe(INTERRUPTED);
    } finally {
      clockOffsetMs = 0;
    }
    expect(await retries()).toEqual([2, 3, 4, 5, 2]);
  });
});
