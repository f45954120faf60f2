import https from "node:https";
import { setTimeout as sleep } from "node:timers/promises";
import tls from "node:tls";
import { randomUUID, X509Certificate } from "node:crypto";
import * as acme from "acme-client";
import { and, eq, sql } from "drizzle-orm";
import { ACME_CHALLENGE_PREFIX } from "../../engine/protocol/edge";
import { recordAudit } from "../audit/record-audit";
import type { Services } from "../context";
import { acmeAccounts, serviceDomains, type AcmeChallenge } from "../db/schema";
import { notify } from "../notifications/enqueue";
import type { OrganizationCipher } from "../secrets/keyring";
import { cipherFor } from "../secrets/organization-cipher";
import { fetchFromDomain } from "./checks";
import { challengeRecordsOf, removeLeftoverRecords } from "./challenge-records";
import { dnsChallenge } from "./dns-challenge";
import { retryFirstIssuances } from "./issuance-retries";
import { openProviderFor } from "./dns-providers/credentials";
import { openDnsProvider } from "./dns-providers/provider";
import { acmeActor, announceEdgeChange, keyContext, renewalDue, requestIssuance } from "./domains";
import { refusalOf, selectDomainsWithCluster } from "./refusal";
import { defaultDomainSettings, type DomainSettings } from "./settings";

/**
 * Certificates by ACME (issue 16, part 1), run by the worker: the control plane holds the
 * account keys and the certificates (sealed), and hands challenges and certificates to the
 * cluster's engine, whose router keeps serving its certificates from its own disk while the
 * control plane is down. HTTP-01: the router answers the CA, and nothing dials into the cluster
 * but the CA, on port 80 of the domain. DNS-01: the worker publishes the TXT record through the
 * domain's DNS provider (server/domains/dns-challenge.ts), and the cluster takes no part.
 */

const accountKeyContext = (accountId: string) => `acme_account:${accountId}:key`;

/**
 * A private ACME CA's root (step-ca, Pebble) is trusted for the directory's HTTPS besides the
 * system's. acme-client talks through one axios instance of its own, so this is the process's
 * one ACME setting.
 */
function trustDirectoryCa(caPem: string | null) {
  acme.axios.defaults.httpsAgent = caPem ? new https.Agent({ ca: [...tls.rootCertificates, caPem] }) : undefined;
}

/**
 * How often an order's status is polled: from 1 s up to 10 s, about a minute over 10 attempts
 * (acme-client's defaults, 5 s to 30 s, leave a validation that took 6 s waiting 15 s more).
 */
const POLLING = { backoffMin: 1_000, backoffMax: 10_000 } as const;

/** The organization's account at the directory: its key created and registered once, kept sealed. */
async function accountClient(services: Services, settings: DomainSettings, organizationId: string, cipher: OrganizationCipher) {
  const { directoryUrl } = settings.acme;
  const [existing] = await services.db
    .select()
    .from(acmeAccounts)
    .where(and(eq(acmeAccounts.organizationId, organizationId), eq(acmeAccounts.directoryUrl, directoryUrl)));
  if (existing?.accountUrl)
    return new acme.Client({
      directoryUrl,
      accountKey: cipher.decrypt(existing.encryptedAccountKey, accountKeyContext(existing.id)),
      accountUrl: existing.accountUrl,
      ...POLLING,
    });
  let account = existing;
  if (!account) {
    const id = randomUUID();
    const key = (await acme.crypto.createPrivateKey()).toString();
    [account] = await services.db
      .insert(acmeAccounts)
      .values({ id, organizationId, directoryUrl, encryptedAccountKey: cipher.encrypt(key, accountKeyContext(id)) })
      .onConflictDoNothing()
      .returning();
    // Another worker created it meanwhile: use theirs.
    if (!account) return accountClient(services, settings, organizationId, cipher);
  }
  const client = new acme.Client({ directoryUrl, accountKey: cipher.decrypt(account.encryptedAccountKey, accountKeyContext(account.id)), ...POLLING });
  await client.createAccount({ termsOfServiceAgreed: true, ...(settings.acme.email ? { contact: [`mailto:${settings.acme.email}`] } : {}) });
  await services.db.update(acmeAccounts).set({ accountUrl: client.getAccountUrl() }).where(eq(acmeAccounts.id, account.id));
  return client;
}

/** Waits until the domain's router answers the challenge (the engine pulled it), within the settings' bound. */
async function waitForRouter(settings: DomainSettings, hostname: string, challenge: AcmeChallenge): Promise<void> {
  const deadline = Date.now() + settings.acme.challengeWaitMs;
  while (Date.now() < deadline) {
    const answer = await fetchFromDomain(settings, hostname, `${ACME_CHALLENGE_PREFIX}${challenge.token}`).catch(() => null);
    if (answer?.status === 200 && answer.body.trim() === challenge.keyAuthorization) return;
    await sleep(250);
  }
  // The CA decides: its validation error says more than ours would.
}

const REPLACED = "the domain's certificate was replaced during the issuance (an upload): it is kept";

export type IssueOutcome = { status: "issued"; notAfter: Date } | { status: "failed"; error: string } | { status: "skipped"; reason: string };

/**
 * Obtains a certificate for a verified domain and stores it (the key sealed), then tells the
 * engine. A failure is recorded on the domain with the CA's reason; a failed renewal (the domain
 * had a certificate) is also a `certificate.renewal_failed` notification.
 */
export async function issueCertificate(services: Services, domainId: string): Promise<IssueOutcome> {
  const settings = services.domains ?? defaultDomainSettings;
  const [row] = await selectDomainsWithCluster(services.db).where(eq(serviceDomains.id, domainId));
  if (!row) return { status: "skipped", reason: "the domain was removed" };
  const { domain, clusterId } = row;
  if (!domain.verifiedAt) return { status: "skipped", reason: `${domain.hostname} is not verified` };
  // Queued before the upgrade that refuses it, or by the previous release during one.
  const refused = refusalOf(domain.hostname, row.cluster);
  if (refused) return { status: "skipped", reason: refused };
  trustDirectoryCa(settings.acme.caPem);
  const cipher = await cipherFor(services.db, services.keyring, domain.organizationId);
  const setChallenge = async (challenge: AcmeChallenge | null) => {
    await services.db.transaction(async (tx) => {
      await tx.update(serviceDomains).set({ acmeChallenge: challenge }).where(eq(serviceDomains.id, domain.id));
      await announceEdgeChange(tx, clusterId);
    });
  };
  // The domain still has the certificate it had when this issuance began: one uploaded meanwhile
  // (or the domain removed) is not overwritten by this issuance's result.
  const stillWaiting = and(eq(serviceDomains.id, domain.id), sql`${serviceDomains.certificatePem} is not distinct from ${domain.certificatePem}`);
  let dnsRecords: ReturnType<typeof dnsChallenge> | null = null;
  try {
    const client = await accountClient(services, settings, domain.organizationId, cipher);
    const [key, csr] = await acme.crypto.createCsr({ commonName: domain.hostname, altNames: [domain.hostname] });
    if (domain.acmeChallengeType === "DNS_01") {
      const { row: providerRow, access } = await openProviderFor(services, domain.organizationId, domain.dnsProviderId!, cipher);
      const provider = openDnsProvider(access);
      // What earlier issuances through this provider left (a dead worker's records) goes first.
      await removeLeftoverRecords(services, { dnsProviderId: providerRow.id, provider });
      dnsRecords = dnsChallenge(provider, settings.acme.dnsPropagationWaitMs, challengeRecordsOf(services, providerRow));
    }
    const challengeOfDomain = dnsRecords;
    const chain = await client.auto({
      csr,
      challengePriority: challengeOfDomain ? ["dns-01"] : ["http-01"],
      termsOfServiceAgreed: true,
      // waitForRouter and waitForTxt stand for acme-client's own checks, which would ask the
      // system's resolver (and port 80 of the domain) rather than the router or the zone's nameserver.
      skipChallengeVerification: true,
      challengeCreateFn: async (authz, challenge, keyAuthorization) => {
        if (challengeOfDomain) return challengeOfDomain.create(authz, keyAuthorization);
        const pending = { token: challenge.token, keyAuthorization };
        await setChallenge(pending);
        await waitForRouter(settings, domain.hostname, pending);
      },
      challengeRemoveFn: (authz, _challenge, keyAuthorization) => (challengeOfDomain ? challengeOfDomain.remove(authz, keyAuthorization) : setChallenge(null)),
    });
    // A record left behind does not cost the certificate: it is said on the domain instead.
    const leftovers = (await challengeOfDomain?.removeLeftovers()) ?? null;
    const notAfter = new Date(new X509Certificate(chain).validTo);
    const landed = await services.db.transaction(async (tx) => {
      const [updated] = await tx
        .update(serviceDomains)
        .set({
          certificateSource: "ACME",
          certificatePem: chain,
          encryptedPrivateKey: cipher.encrypt(key.toString(), keyContext(domain.id)),
          certificateNotAfter: notAfter,
          certificateError: leftovers,
          certificateErrorAt: leftovers ? services.now() : null,
          acmeChallenge: null,
        })
        .where(stillWaiting)
        .returning({ id: serviceDomains.id });
      if (!updated) return false;
      await recordAudit(tx, acmeActor(domain.organizationId), {
        action: domain.certificatePem ? "certificate.renew" : "certificate.issue",
        targetType: "service",
        targetId: domain.serviceId,
        changes: { hostname: domain.hostname, notAfter: notAfter.toISOString(), directory: settings.acme.directoryUrl, challenge: domain.acmeChallengeType },
      });
      await announceEdgeChange(tx, clusterId);
      return true;
    });
    return landed ? { status: "issued", notAfter } : { status: "skipped", reason: REPLACED };
  } catch (error) {
    const leftovers = await dnsRecords?.removeLeftovers();
    const message = [(error as Error).message, leftovers].filter(Boolean).join("; ").slice(0, 2000);
    const now = services.now();
    const recorded = await services.db.transaction(async (tx) => {
      const [updated] = await tx
        .update(serviceDomains)
        .set({ certificateError: message, certificateErrorAt: now, acmeChallenge: null })
        .where(stillWaiting)
        .returning({ id: serviceDomains.id });
      if (!updated) return false;
      await recordAudit(tx, acmeActor(domain.organizationId), {
        action: "certificate.failed",
        targetType: "service",
        targetId: domain.serviceId,
        changes: { hostname: domain.hostname, error: message },
      });
      if (domain.certificatePem)
        await notify(
          tx,
          "certificate.renewal_failed",
          { organizationId: domain.organizationId, environmentId: row.environmentId },
          { text: `the certificate of ${domain.hostname} (${row.serviceName}) could not be renewed: ${message}` },
          now,
        );
      await announceEdgeChange(tx, clusterId);
      return true;
    });
    return recorded ? { status: "failed", error: message } : { status: "skipped", reason: REPLACED };
  }
}

/**
 * Adds an issue_certificate job for each ACME certificate due for renewal, and for each first
 * certificate due to be tried again (server/domains/issuance-retries.ts); returns how many.
 * Refused domains (refusal.ts) are neither.
 * First, removes the DNS-01 records dead workers left in their zones (challenge-records.ts).
 */
export async function scheduleRenewals(services: Services): Promise<number> {
  await removeLeftoverRecords(services);
  const now = services.now();
  const rows = await selectDomainsWithCluster(services.db).where(eq(serviceDomains.certificateSource, "ACME"));
  const due = rows.filter(({ domain, cluster }) => renewalDue(domain, now) && !refusalOf(domain.hostname, cluster));
  for (const { domain } of due) await requestIssuance(services.db, domain.id);
  return due.length + (await retryFirstIssuances(services));
}
