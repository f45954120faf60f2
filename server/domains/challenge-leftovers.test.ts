/**
 * DNS-01 records a dead worker leaves (issue 16, part 1): an issuance publishes
 * `_acme-challenge.<name>` through the domain's DNS provider and removes it when it ends, but a
 * worker killed in between took the record's value with it. On 127.0.0.1: a real PowerDNS
 * Authoritative holding the zone, Pebble validating through it, a real PostgreSQL, and the worker
 * as its own process (`npm run worker`), killed with SIGKILL while its issuance waits for the
 * record to show.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../test/database";
import { eventually } from "../../test/engine-harness";
import { spawnControlPlaneProcess } from "../../test/support/control-plane-process";
import { pebbleMissing, startPebble, type Pebble } from "../../test/support/pebble";
import { testPort } from "../../test/support/ports";
import { powerDnsMissing, startPowerDns, type PowerDns } from "../../test/support/powerdns";
import { skipWithout } from "../../test/support/requirements";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { acmeDnsRecords, serviceDomains } from "../db/schema";
import { generateKey } from "../secrets/envelope";
import { createMasterKeyring } from "../secrets/keyring";
import { issueCertificate, scheduleRenewals } from "./acme";
import { requestIssuance } from "./domains";
import { defaultDomainSettings } from "./settings";

const skip = skipWithout((await pebbleMissing()) ?? (await powerDnsMissing()));
const API_KEY = "pdns-key-leftovers-0123456789ab";

let database: TestDatabase;
let services: Services;
let org: SeededOrganization;
let pdns: PowerDns;
let pebble: Pebble;
let dir: string;
let masterKey: Buffer;
let serviceId: string;
let providerId: string;
/** A nameserver that never answers: the worker's issuance waits there (2 minutes) with its record published. */
let silent: string;
/** Moves the control plane's clock (how old a noted record is). */
let clockOffsetMs = 0;

const admin = () => createCaller({ services, actor: org.as("ADMIN") });
const developer = () => createCaller({ services, actor: org.as("DEVELOPER") });
const providerSettings = (nameserver: string) => ({ kind: "POWERDNS" as const, apiUrl: pdns.apiUrl, nameserver });

beforeAll(async () => {
  if (skip) return;
  database = await createTestDatabase();
  pdns = await startPowerDns({ zone: "example.test", apiKey: API_KEY });
  pebble = await startPebble({ httpPort: await testPort(), dnsServer: pdns.dnsServer });
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-leftovers-"));
  masterKey = generateKey();
  services = testServices(database.db, {
    keyring: createMasterKeyring(masterKey),
    now: () => new Date(Date.now() + clockOffsetMs),
    domains: {
      ...defaultDomainSettings,
      dnsServers: [pdns.dnsServer],
      acme: { ...defaultDomainSettings.acme, directoryUrl: pebble.directoryUrl, caPem: pebble.directoryCa, dnsPropagationWaitMs: 5_000 },
    },
  });
  org = await seedOrganization(services, "leftovers");
  const project = await developer().projects.create({ name: "shop" });
  const environment = await developer().environments.create({ projectId: project.id, name: "production" });
  const git = { url: "https://github.com/acme/shop.git", ref: { branch: "main" } };
  ({ id: serviceId } = await developer().services.create({ environmentId: environment.id, name: "api", config: { git } }));
  silent = `127.0.0.1:${await testPort()}`;
  ({ id: providerId } = await admin().dnsProviders.create({ name: "main", zone: "example.test", settings: providerSettings(silent), token: API_KEY }));
}, 120_000);

afterAll(async () => {
  if (skip) return;
  await pebble?.stop();
  await pdns?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/**
 * A verified DNS-01 domain whose issuance a worker process takes and dies in, SIGKILLed once its
 * record is in the zone; returns the domain's id and the values left at its `_acme-challenge` name.
 */
async function workerDiesDuringIssuance(hostname: string) {
  await admin().dnsProviders.update({ dnsProviderId: providerId, settings: providerSettings(silent) });
  const added = await developer().domains.add({ serviceId, hostname, challenge: "DNS_01", dnsProviderId: providerId });
  await services.db.update(serviceDomains).set({ verifiedAt: new Date() }).where(eq(serviceDomains.id, added.id));
  await requestIssuance(services.db, added.id);
  const caFile = path.join(dir, "pebble-ca.pem");
  await fs.writeFile(caFile, pebble.directoryCa);
  const worker = spawnControlPlaneProcess("worker", {
    port: await testPort(),
    env: {
      DATABASE_URL: database.url,
      SLIPWAY_MASTER_KEY: masterKey.toString("base64"),
      AUTH_SECRET: "leftovers-test-secret-of-32-characters",
      SLIPWAY_HOME: dir,
      SLIPWAY_ACME_DIRECTORY_URL: pebble.directoryUrl,
      SLIPWAY_ACME_CA_FILE: caFile,
    },
  });
  try {
    await eventually(async () => (await pdns.txt(`_acme-challenge.${hostname}`)).length > 0 || undefined, 60_000, `the worker's record at ${hostname}`);
  } finally {
    await worker.stop("SIGKILL");
  }
  return { domainId: added.id, left: await pdns.txt(`_acme-challenge.${hostname}`) };
}

describe.skipIf(skip)("DNS-01 records a dead worker left", () => {
  it("are removed by the next issuance through the provider, which then leaves none of its own", async () => {
    const { domainId, left } = await workerDiesDuringIssuance("www.example.test");
    expect(left).toHaveLength(1);
    await admin().dnsProviders.update({ dnsProviderId: providerId, settings: providerSettings(pdns.dnsServer) });
    try {
      // The retry the daily task asks for, a few hours later.
      clockOffsetMs = 2 * 3_600_000;
      expect(await issueCertificate(services, domainId)).toMatchObject({ status: "issued" });
    } finally {
      clockOffsetMs = 0;
    }
    expect(await pdns.txt("_acme-challenge.www.example.test")).toEqual([]);
    expect(await services.db.select().from(acmeDnsRecords)).toEqual([]);
  }, 180_000);

  it("are removed by the daily task once no issuance can be using them, and not before", async () => {
    const { left } = await workerDiesDuringIssuance("api.example.test");
    expect(left).toHaveLength(1);
    // An issuance of the same name may be running now (a renewal asked for during one): its record stays.
    await scheduleRenewals(services);
    expect(await pdns.txt("_acme-challenge.api.example.test")).toEqual(left);
    try {
      clockOffsetMs = 2 * 3_600_000;
      await scheduleRenewals(services);
    } finally {
      clockOffsetMs = 0;
    }
    expect(await pdns.txt("_acme-challenge.api.example.test")).toEqual([]);
    expect(await services.db.select().from(acmeDnsRecords)).toEqual([]);
  }, 180_000);
});
