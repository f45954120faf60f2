import { z } from "zod";

/**
 * What a cluster's router needs to serve custom domains (issue 16, part 1): each domain of the
 * cluster's services with its verification token (while unverified, HTTP token method), the
 * ACME HTTP-01 challenge being answered, and its certificate with the private key. The engine
 * pulls it (`edge:pull`) and hands it to its router, which keeps it on disk so that HTTPS keeps
 * working while the engine or the control plane is down.
 */
export const edgeDomain = z.object({
  hostname: z.string().min(1).max(253),
  serviceId: z.string().uuid(),
  /** Served (routed to the service) only once verified. */
  verified: z.boolean(),
  /** The router answers `/.well-known/slipway-verification/<token>` with it (HTTP token method, unverified). */
  verificationToken: z.string().nullable(),
  /** Plain HTTP is redirected to HTTPS (applies once there is a certificate). */
  redirectHttps: z.boolean(),
  acmeChallenge: z.object({ token: z.string(), keyAuthorization: z.string() }).nullable(),
  certificate: z.object({ certPem: z.string(), keyPem: z.string() }).nullable(),
});
export type EdgeDomain = z.infer<typeof edgeDomain>;

export const edgeState = z.object({ domains: z.array(edgeDomain) });
export type EdgeState = z.infer<typeof edgeState>;

/** The path prefixes the router answers itself on custom domains. */
export const ACME_CHALLENGE_PREFIX = "/.well-known/acme-challenge/";
export const VERIFICATION_PREFIX = "/.well-known/slipway-verification/";
