import { randomBytes, X509Certificate, createPrivateKey } from "node:crypto";
import { and, eq, isNotNull } from "drizzle-orm";
import { z } from "zod";
import { recordAudit, REDACTED } from "../audit/record-audit";
import type { Actor } from "../auth/actor";
import type { DomainContext } from "../context";
import type { Executor } from "../db/client";
import { conflictOnDuplicate } from "../db/errors";
import { acmeChallengeTypes, domainVerificationMethods, environments, serviceDomains, services, type AcmeChallengeType } from "../db/schema";
import { notifyEngine } from "../deployments/engine-channel";
import { AppError, notFound } from "../errors";
import { addJob } from "../jobs/add-job";
import { customDomainName } from "../input-schemas";
import { cipherFor } from "../secrets/organization-cipher";
import { assertNotGeneratedHostname } from "../services/domains";
import { checkOwnership, txtRecordOf, verificationUrlOf } from "./checks";
import { providerForDomain } from "./dns-providers/credentials";
import { refusalOf, selectDomainsWithCluster } from "./refusal";
import { defaultDomainSettings, RENEW_BEFORE_DAYS } from "./settings";

/** Who the audit log names for what certificates do by themselves (issuances, renewals, retries). */
export const acmeActor = (organizationId: string): Actor => ({
  type: "system",
  id: null,
  label: "certificates (ACME)",
  organizationId,
  role: "OWNER",
  origin: "SYSTEM",
});

/**
 * Custom domains of services (issue 16, part 1): added by users, verified by a TXT record or an
 * HTTP token before the router serves them, then certified by ACME or by an uploaded
 * certificate. Every change is audited and tells the cluster's engine to pull the new state.
 */

export const addDomainInput = z.object({
  serviceId: z.string().uuid(),
  hostname: customDomainName,
  /** DNS_TXT: a TXT record proves it; HTTP_TOKEN: the router serves a token the control plane fetches. */
  method: z.enum(domainVerificationMethods).default("DNS_TXT"),
  /** How ACME checks the domain: HTTP-01 through the router, or DNS-01 through `dnsProviderId`. */
  challenge: z.enum(acmeChallengeTypes).default("HTTP_01"),
  dnsProviderId: z.string().uuid().optional(),
});

export const updateDomainInput = z.object({
  domainId: z.string().uuid(),
  redirectHttps: z.boolean().optional(),
  challenge: z.enum(acmeChallengeTypes).optional(),
  /** With challenge DNS_01: the provider its TXT records go through. */
  dnsProviderId: z.string().uuid().optional(),
});

export const uploadCertificateInput = z.object({
  domainId: z.string().uuid(),
  /** PEM, the domain's certificate first, then its chain. */
  certificatePem: z.string().trim().min(1).max(64_000),
  privateKeyPem: z.string().trim().min(1).max(16_000),
});

type DomainRow = typeof serviceDomains.$inferSelect;

/** Authenticated data of a sealed key: the ciphertext cannot be moved to another domain. */
export const keyContext = (domainId: string) => `service_domain:${domainId}:key`;

/** A domain as listed: with why it is refused (refusal.ts), when it is. */
type ListedDomain = DomainRow & { refused?: string | null };

/** Where the certificate of a domain stands, as the page shows it. */
export function certificateStatusOf(row: ListedDomain, now: Date) {
  if (row.refused) return "REFUSED" as const;
  if (!row.verifiedAt) return "AWAITING_VERIFICATION" as const;
  if (row.certificatePem && row.certificateNotAfter) {
    if (row.certificateNotAfter <= now) return "EXPIRED" as const;
    return "ACTIVE" as const;
  }
  return row.certificateError ? ("FAILED" as const) : ("ISSUING" as const);
}

export function describeDomain(row: ListedDomain, now: Date) {
  return {
    id: row.id,
    serviceId: row.serviceId,
    hostname: row.hostname,
    method: row.verificationMethod,
    verified: row.verifiedAt !== null,
    /** Why the router does not serve it, verified or not. */
    refused: row.refused ?? null,
    verifiedAt: row.verifiedAt?.toISOString() ?? null,
    lastCheckedAt: row.lastCheckedAt?.toISOString() ?? null,
    checkError: row.checkError,
    /** What the owner publishes to verify it. */
    txtRecord: row.verificationMethod === "DNS_TXT" ? txtRecordOf(row.hostname, row.verificationToken) : null,
    httpToken: row.verificationMethod === "HTTP_TOKEN" ? { url: verificationUrlOf(row.hostname, row.verificationToken), body: row.verificationToken } : null,
    redirectHttps: row.redirectHttps,
    challenge: { type: row.acmeChallengeType, dnsProviderId: row.dnsProviderId },
    certificate: {
      status: certificateStatusOf(row, now),
      source: row.certificateSource,
      notAfter: row.certificateNotAfter?.toISOString() ?? null,
      error: row.certificateError,
      errorAt: row.certificateErrorAt?.toISOString() ?? null,
    },
    createdAt: row.createdAt.toISOString(),
  };
}

/** A routable service (an application or a container) of the caller's organization, with its cluster. */
async function routableService(ctx: DomainContext, serviceId: string) {
  const [service] = await ctx.db
    .select({ id: services.id, name: services.name, kind: services.kind, clusterId: environments.clusterId })
    .from(services)
    .innerJoin(environments, eq(environments.id, services.environmentId))
    .where(and(eq(services.id, serviceId), eq(services.organizationId, ctx.actor.organizationId)));
  if (!service) throw notFound("Service");
  if (service.kind !== "APPLICATION" && service.kind !== "CONTAINER")
    throw new AppError("INVALID", `${service.name} is a ${service.kind.toLowerCase()}: only applications and containers serve HTTP on a domain`);
  return service;
}

async function domainOf(ctx: DomainContext, domainId: string) {
  const [row] = await selectDomainsWithCluster(ctx.db).where(and(eq(serviceDomains.id, domainId), eq(serviceDomains.organizationId, ctx.actor.organizationId)));
  if (!row) throw notFound("Domain");
  return row;
}

/** A domain of the caller's organization that may be served: a refused one (refusal.ts) can only be removed. */
async function servableDomainOf(ctx: DomainContext, domainId: string) {
  const row = await domainOf(ctx, domainId);
  const refused = refusalOf(row.domain.hostname, row.cluster);
  if (refused) throw new AppError("INVALID", refused);
  return row;
}

/** Tells the cluster's engine (on commit) to pull its custom domains again. */
export async function announceEdgeChange(db: Executor, clusterId: string | null): Promise<void> {
  if (clusterId) await notifyEngine(db, { clusterId, type: "edge:changed" });
}

/**
 * The challenge a domain asks for, checked: DNS-01 needs a provider of the organization whose
 * zone holds the name; HTTP-01 takes none.
 */
async function challengeOf(ctx: DomainContext, hostname: string, challenge: AcmeChallengeType, dnsProviderId: string | undefined) {
  if (challenge === "HTTP_01") {
    if (dnsProviderId) throw new AppError("INVALID", "a DNS provider is for the DNS-01 challenge: choose DNS_01 or leave the provider out");
    return { acmeChallengeType: challenge, dnsProviderId: null, providerName: null };
  }
  if (!dnsProviderId) throw new AppError("INVALID", "DNS-01 publishes its TXT record through a DNS provider: choose one (add it first if there is none)");
  const provider = await providerForDomain(ctx.db, ctx.actor.organizationId, dnsProviderId, hostname);
  return { acmeChallengeType: challenge, dnsProviderId: provider.id, providerName: provider.name };
}

export async function addDomain(ctx: DomainContext, input: z.infer<typeof addDomainInput>) {
  const service = await routableService(ctx, input.serviceId);
  // Not another service's generated hostname, nor a name one could be given later.
  await assertNotGeneratedHostname(ctx.db, service.clusterId, input.hostname);
  const { providerName, ...challenge } = await challengeOf(ctx, input.hostname, input.challenge, input.dnsProviderId);
  const [served] = await ctx.db
    .select({ serviceId: serviceDomains.serviceId })
    .from(serviceDomains)
    .where(and(eq(serviceDomains.hostname, input.hostname), isNotNull(serviceDomains.verifiedAt)));
  if (served && served.serviceId !== service.id) throw new AppError("CONFLICT", `${input.hostname} is already served by another service`);
  return ctx.db.transaction(async (tx) => {
    const [row] = await conflictOnDuplicate(`The domain ${input.hostname} on ${service.name}`, () =>
      tx
        .insert(serviceDomains)
        .values({
          organizationId: ctx.actor.organizationId,
          serviceId: service.id,
          hostname: input.hostname,
          verificationMethod: input.method,
          verificationToken: randomBytes(24).toString("base64url"),
          ...challenge,
        })
        .returning(),
    );
    await recordAudit(tx, ctx.actor, {
      action: "domain.add",
      targetType: "service",
      targetId: service.id,
      changes: { hostname: input.hostname, method: input.method, challenge: input.challenge, ...(providerName ? { dnsProvider: providerName } : {}) },
    });
    // The router serves the HTTP token from now on.
    await announceEdgeChange(tx, service.clusterId);
    return row!;
  });
}

export async function listDomains(ctx: DomainContext, serviceId: string) {
  const [service] = await ctx.db
    .select({ id: services.id })
    .from(services)
    .where(and(eq(services.id, serviceId), eq(services.organizationId, ctx.actor.organizationId)));
  if (!service) throw notFound("Service");
  const rows = await selectDomainsWithCluster(ctx.db).where(eq(serviceDomains.serviceId, serviceId)).orderBy(serviceDomains.hostname);
  return rows.map(({ domain, cluster }): ListedDomain => ({ ...domain, refused: refusalOf(domain.hostname, cluster) }));
}

export async function removeDomain(ctx: DomainContext, domainId: string) {
  const { domain, clusterId } = await domainOf(ctx, domainId);
  await ctx.db.transaction(async (tx) => {
    await tx.delete(serviceDomains).where(eq(serviceDomains.id, domainId));
    await recordAudit(tx, ctx.actor, { action: "domain.remove", targetType: "service", targetId: domain.serviceId, changes: { hostname: domain.hostname } });
    await announceEdgeChange(tx, clusterId);
  });
  return domain;
}

/**
 * Turns the HTTPS redirect on or off, or changes the domain's ACME challenge. A verified domain
 * still without a certificate is tried again at once with its new challenge.
 */
export async function updateDomain(ctx: DomainContext, input: z.infer<typeof updateDomainInput>) {
  const { domain, clusterId } = await servableDomainOf(ctx, input.domainId);
  if (input.redirectHttps === undefined && input.challenge === undefined) throw new AppError("INVALID", "nothing to change: give redirectHttps or challenge");
  if (input.challenge === undefined && input.dnsProviderId) throw new AppError("INVALID", "give the challenge (DNS_01) with its DNS provider");
  const challenge = input.challenge ? await challengeOf(ctx, domain.hostname, input.challenge, input.dnsProviderId) : null;
  return ctx.db.transaction(async (tx) => {
    const [row] = await tx
      .update(serviceDomains)
      .set({
        ...(input.redirectHttps === undefined ? {} : { redirectHttps: input.redirectHttps }),
        ...(challenge ? { acmeChallengeType: challenge.acmeChallengeType, dnsProviderId: challenge.dnsProviderId } : {}),
      })
      .where(eq(serviceDomains.id, domain.id))
      .returning();
    await recordAudit(tx, ctx.actor, {
      action: "domain.update",
      targetType: "service",
      targetId: domain.serviceId,
      changes: {
        hostname: domain.hostname,
        ...(input.redirectHttps === undefined ? {} : { redirectHttps: input.redirectHttps }),
        ...(challenge ? { challenge: challenge.acmeChallengeType, dnsProvider: challenge.providerName } : {}),
      },
    });
    if (challenge && domain.verifiedAt && !domain.certificatePem) await requestIssuance(tx, domain.id);
    await announceEdgeChange(tx, clusterId);
    return row!;
  });
}

/** The key of a domain's issuance job: one queued or running per domain. */
export const ISSUANCE_JOB_KEY_PREFIX = "certificate:";
export const issuanceJobKey = (domainId: string) => `${ISSUANCE_JOB_KEY_PREFIX}${domainId}`;

/**
 * Adds the job that obtains (or renews) a domain's certificate by ACME, de-duplicated per domain.
 * One attempt: a failure is recorded on the domain with the CA's reason, and the renewal
 * scheduler tries again (a renewal daily; a first certificate, or one a dead worker left
 * unfinished, with backoff: server/domains/issuance-retries.ts).
 */
export async function requestIssuance(db: Executor, domainId: string): Promise<void> {
  await addJob(db, "issue_certificate", { domainId }, { jobKey: issuanceJobKey(domainId), maxAttempts: 1 });
}

/**
 * Checks a domain's proof now. A verified domain is served at once (over HTTP until it has a
 * certificate, which is requested here). A failed check is recorded with its reason; it does not
 * take a verified domain down (a DNS hiccup must not stop a site).
 */
export async function verifyDomain(ctx: DomainContext, domainId: string) {
  const { domain, clusterId } = await domainOf(ctx, domainId);
  // A domain added before addDomain refused these is not verified now either.
  await assertNotGeneratedHostname(ctx.db, clusterId, domain.hostname);
  const settings = ctx.domains ?? defaultDomainSettings;
  const problem = await checkOwnership(settings, domain);
  const now = ctx.now();
  return ctx.db.transaction(async (tx) => {
    const verifiedAt = problem === null ? (domain.verifiedAt ?? now) : domain.verifiedAt;
    const [row] = await conflictOnDuplicate(`A verified ${domain.hostname} on another service`, () =>
      tx.update(serviceDomains).set({ verifiedAt, lastCheckedAt: now, checkError: problem }).where(eq(serviceDomains.id, domain.id)).returning(),
    );
    await recordAudit(tx, ctx.actor, {
      action: "domain.verify",
      targetType: "service",
      targetId: domain.serviceId,
      changes: { hostname: domain.hostname, method: domain.verificationMethod, verified: problem === null, ...(problem ? { reason: problem } : {}) },
    });
    if (problem === null && !domain.certificatePem) await requestIssuance(tx, domain.id);
    if ((verifiedAt === null) !== (domain.verifiedAt === null)) await announceEdgeChange(tx, clusterId);
    return row!;
  });
}

/** Obtain a new certificate by ACME now (a verified domain), replacing an uploaded one. */
export async function renewCertificate(ctx: DomainContext, domainId: string) {
  const { domain } = await servableDomainOf(ctx, domainId);
  if (!domain.verifiedAt) throw new AppError("INVALID", `${domain.hostname} is not verified yet: verify it first`);
  await ctx.db.transaction(async (tx) => {
    await recordAudit(tx, ctx.actor, {
      action: "certificate.request",
      targetType: "service",
      targetId: domain.serviceId,
      changes: { hostname: domain.hostname },
    });
    await requestIssuance(tx, domain.id);
  });
  return domain;
}

/** The leaf of a PEM chain, parsed; INVALID with the reason when it is not a certificate. */
function parseLeaf(pem: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (error) {
    throw new AppError("INVALID", `the certificate is not a PEM X.509 certificate (${(error as Error).message})`);
  }
}

/** Stores a user's own certificate and key (sealed) for a domain; the router serves it instead of an ACME one. */
export async function uploadCertificate(ctx: DomainContext, input: z.infer<typeof uploadCertificateInput>) {
  const { domain, clusterId } = await servableDomainOf(ctx, input.domainId);
  const leaf = parseLeaf(input.certificatePem);
  let key;
  try {
    key = createPrivateKey(input.privateKeyPem);
  } catch (error) {
    throw new AppError("INVALID", `the private key is not a PEM private key (${(error as Error).message})`);
  }
  if (!leaf.checkPrivateKey(key)) throw new AppError("INVALID", "the private key does not belong to the certificate");
  if (!leaf.checkHost(domain.hostname)) throw new AppError("INVALID", `the certificate is for ${leaf.subjectAltName ?? leaf.subject}, not ${domain.hostname}`);
  const notAfter = new Date(leaf.validTo);
  if (notAfter <= ctx.now()) throw new AppError("INVALID", `the certificate expired on ${notAfter.toISOString()}`);
  const cipher = await cipherFor(ctx.db, ctx.keyring, ctx.actor.organizationId);
  return ctx.db.transaction(async (tx) => {
    const [row] = await tx
      .update(serviceDomains)
      .set({
        certificateSource: "UPLOADED",
        certificatePem: input.certificatePem,
        encryptedPrivateKey: cipher.encrypt(input.privateKeyPem, keyContext(domain.id)),
        certificateNotAfter: notAfter,
        certificateError: null,
        certificateErrorAt: null,
      })
      .where(eq(serviceDomains.id, domain.id))
      .returning();
    await recordAudit(tx, ctx.actor, {
      action: "certificate.upload",
      targetType: "service",
      targetId: domain.serviceId,
      changes: { hostname: domain.hostname, notAfter: notAfter.toISOString(), fingerprint: leaf.fingerprint256, privateKey: REDACTED },
    });
    await announceEdgeChange(tx, clusterId);
    return row!;
  });
}

/** ACME certificates that expire within RENEW_BEFORE_DAYS (uploaded ones are their owner's to replace). */
export function renewalDue(row: Pick<DomainRow, "certificateSource" | "certificateNotAfter" | "verifiedAt">, now: Date): boolean {
  if (!row.verifiedAt || row.certificateSource !== "ACME" || !row.certificateNotAfter) return false;
  return row.certificateNotAfter.getTime() - now.getTime() <= RENEW_BEFORE_DAYS * 86_400_000;
}
