import { sql } from "drizzle-orm";
import { boolean, check, index, jsonb, pgEnum, pgTable, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { createdAt, id, updatedAt } from "./columns";
import { organizations } from "./organizations";
import { services } from "./projects";

/** How the owner of a custom domain proves it (issue 16, part 1): a TXT record, or a token the router serves. */
export const domainVerificationMethods = ["DNS_TXT", "HTTP_TOKEN"] as const;
export type DomainVerificationMethod = (typeof domainVerificationMethods)[number];
export const domainVerificationMethodEnum = pgEnum("domain_verification_method", domainVerificationMethods);

/** Where a domain's certificate comes from: issued by ACME (and renewed), or uploaded by a user. */
export const certificateSources = ["ACME", "UPLOADED"] as const;
export type CertificateSource = (typeof certificateSources)[number];
export const certificateSourceEnum = pgEnum("certificate_source", certificateSources);

/**
 * How ACME checks control of a domain before certifying it: HTTP-01 (the router answers the CA
 * on port 80) or DNS-01 (a TXT record published through a DNS provider's API, for names the CA
 * cannot reach over HTTP).
 */
export const acmeChallengeTypes = ["HTTP_01", "DNS_01"] as const;
export type AcmeChallengeType = (typeof acmeChallengeTypes)[number];
export const acmeChallengeTypeEnum = pgEnum("acme_challenge_type", acmeChallengeTypes);

/** The DNS hosting services Slipway publishes DNS-01 records through (server/domains/dns-providers/). */
export const dnsProviderKinds = ["POWERDNS"] as const;
export type DnsProviderKind = (typeof dnsProviderKinds)[number];
export const dnsProviderKindEnum = pgEnum("dns_provider_kind", dnsProviderKinds);

/**
 * An organization's access to one DNS zone at a DNS hosting service, for ACME DNS-01: its API
 * token sealed with the organization's data key like variables, never returned (the hint is its
 * last characters). `settings` holds what the kind needs besides the token (PowerDNS: the API's
 * URL, the server id, the nameserver to check records on).
 */
export const dnsProviders = pgTable(
  "dns_providers",
  {
    id: id(),
    organizationId: uuid("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    kind: dnsProviderKindEnum("kind").notNull(),
    /** The zone's apex, lowercase, without a trailing dot: the domains under it may use this provider. */
    zone: text("zone").notNull(),
    settings: jsonb("settings").$type<Record<string, unknown>>().notNull(),
    encryptedToken: text("encrypted_token").notNull(),
    tokenHint: text("token_hint").notNull(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex("dns_providers_org_name_key").on(t.organizationId, t.name)],
);

/**
 * A DNS-01 TXT record an issuance publishes through a DNS provider, noted before it is published
 * and forgotten once removed: the values exist nowhere else, so a worker that dies between the two
 * would leave `_acme-challenge.<name>` in the zone for good. What is still here after an issuance
 * can have ended is removed by the next one through the provider and by the daily renewal task
 * (server/domains/challenge-records.ts).
 */
export const acmeDnsRecords = pgTable(
  "acme_dns_records",
  {
    id: id(),
    organizationId: uuid("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    dnsProviderId: uuid("dns_provider_id")
      .notNull()
      .references(() => dnsProviders.id, { onDelete: "cascade" }),
    /** Fully qualified, without a trailing dot: `_acme-challenge.<hostname>`. */
    name: text("name").notNull(),
    value: text("value").notNull(),
    /** Why the last try at removing it as a leftover failed (it is tried again daily). */
    removeError: text("remove_error"),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("acme_dns_records_provider_name_value_key").on(t.dnsProviderId, t.name, t.value)],
);

/** A pending ACME HTTP-01 challenge: the router answers `/.well-known/acme-challenge/<token>` with the key authorization. */
export type AcmeChallenge = { token: string; keyAuthorization: string };

/**
 * A custom domain of a service: served by the router of the service's cluster once verified,
 * over HTTPS once it has a certificate. The certificate's private key is sealed with the
 * organization's data key, like variables; the certificate itself is public.
 */
export const serviceDomains = pgTable(
  "service_domains",
  {
    id: id(),
    organizationId: uuid("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    serviceId: uuid("service_id")
      .notNull()
      .references(() => services.id, { onDelete: "cascade" }),
    /** Lowercase, without a trailing dot. */
    hostname: text("hostname").notNull(),
    verificationMethod: domainVerificationMethodEnum("verification_method").notNull(),
    /** The value of the TXT record, or the body of the HTTP token. */
    verificationToken: text("verification_token").notNull(),
    verifiedAt: timestamp("verified_at", { withTimezone: true }),
    lastCheckedAt: timestamp("last_checked_at", { withTimezone: true }),
    /** Why the last verification check failed; null after a success. */
    checkError: text("check_error"),
    /** Plain HTTP requests to the domain are redirected to HTTPS (once it has a certificate). */
    redirectHttps: boolean("redirect_https").notNull().default(true),
    certificateSource: certificateSourceEnum("certificate_source"),
    /** The PEM chain, leaf first. */
    certificatePem: text("certificate_pem"),
    encryptedPrivateKey: text("encrypted_private_key"),
    certificateNotAfter: timestamp("certificate_not_after", { withTimezone: true }),
    /** Why the last issuance or renewal failed, and when; cleared by the next success. */
    certificateError: text("certificate_error"),
    certificateErrorAt: timestamp("certificate_error_at", { withTimezone: true }),
    acmeChallenge: jsonb("acme_challenge").$type<AcmeChallenge>(),
    acmeChallengeType: acmeChallengeTypeEnum("acme_challenge_type").notNull().default("HTTP_01"),
    /** DNS_01: the provider its TXT records are published through (a provider in use cannot be removed). */
    dnsProviderId: uuid("dns_provider_id").references(() => dnsProviders.id, { onDelete: "restrict" }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("service_domains_service_hostname_key").on(t.serviceId, t.hostname),
    // Anyone may claim a name; only one service may have it verified (and so served).
    uniqueIndex("service_domains_verified_hostname_key")
      .on(t.hostname)
      .where(sql`${t.verifiedAt} is not null`),
    index("service_domains_org_idx").on(t.organizationId),
    check("service_domains_dns_01_provider_check", sql`${t.acmeChallengeType} = 'HTTP_01' or ${t.dnsProviderId} is not null`),
  ],
);

/** An organization's account at an ACME directory; its key is sealed with the organization's data key. */
export const acmeAccounts = pgTable(
  "acme_accounts",
  {
    id: id(),
    organizationId: uuid("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    directoryUrl: text("directory_url").notNull(),
    encryptedAccountKey: text("encrypted_account_key").notNull(),
    accountUrl: text("account_url"),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("acme_accounts_org_directory_key").on(t.organizationId, t.directoryUrl)],
);
