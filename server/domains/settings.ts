/**
 * How the control plane checks custom domains and obtains their certificates (issue 16, part 1),
 * from the environment (server/env.ts) at boot.
 */
export type DomainSettings = {
  /** DNS servers ("127.0.0.1:8053") for TXT records and the HTTP check's addresses; null: the system's (/etc/resolv.conf). */
  dnsServers: string[] | null;
  /** The port the HTTP checks reach a domain's router on: 80 in production, where the ACME CA looks too. */
  httpPort: number;
  /** The bound on one HTTP or DNS check. */
  checkTimeoutMs: number;
  acme: {
    /** The ACME directory (Let's Encrypt's production one by default). */
    directoryUrl: string;
    /** A PEM bundle trusted for the directory's HTTPS besides the system's: a private ACME CA (step-ca, Pebble). */
    caPem: string | null;
    /** The account's contact; none is allowed by Let's Encrypt. */
    email: string | null;
    /** How long issuance waits for the cluster's router to serve a challenge before the CA is asked to validate. */
    challengeWaitMs: number;
    /** How long DNS-01 waits for its TXT record to show on the zone's nameserver (a provider's caches may hold a negative answer a minute). */
    dnsPropagationWaitMs: number;
  };
};

export const LETS_ENCRYPT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory";

export const defaultDomainSettings: DomainSettings = {
  dnsServers: null,
  httpPort: 80,
  checkTimeoutMs: 10_000,
  acme: { directoryUrl: LETS_ENCRYPT_DIRECTORY, caPem: null, email: null, challengeWaitMs: 30_000, dnsPropagationWaitMs: 120_000 },
};

/** Certificates are renewed this long before they expire. */
export const RENEW_BEFORE_DAYS = 30;
