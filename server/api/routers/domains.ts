import { z } from "zod";
import { acmeChallengeTypes, certificateSources, domainVerificationMethods } from "../../db/schema";
import {
  addDomain,
  addDomainInput,
  describeDomain,
  listDomains,
  removeDomain,
  renewCertificate,
  updateDomain,
  updateDomainInput,
  uploadCertificate,
  uploadCertificateInput,
  verifyDomain,
} from "../../domains/domains";
import { procedure, router } from "../trpc";

const domainOutput = z.object({
  id: z.string(),
  serviceId: z.string(),
  hostname: z.string(),
  method: z.enum(domainVerificationMethods),
  verified: z.boolean(),
  /**
   * Why the router does not serve it, verified or not: it is under its cluster's domain suffix,
   * added before such domains were refused (server/domains/refusal.ts). It can only be removed.
   */
  refused: z.string().nullable(),
  verifiedAt: z.string().nullable(),
  lastCheckedAt: z.string().nullable(),
  /** Why the last verification check failed. */
  checkError: z.string().nullable(),
  /** DNS_TXT: the record to publish. */
  txtRecord: z.object({ name: z.string(), value: z.string() }).nullable(),
  /** HTTP_TOKEN: the URL the control plane fetches and the body the router answers it with. */
  httpToken: z.object({ url: z.string(), body: z.string() }).nullable(),
  redirectHttps: z.boolean(),
  /** How ACME checks the domain; DNS_01 names the DNS provider its TXT record goes through. */
  challenge: z.object({ type: z.enum(acmeChallengeTypes), dnsProviderId: z.string().nullable() }),
  certificate: z.object({
    status: z.enum(["AWAITING_VERIFICATION", "ISSUING", "ACTIVE", "EXPIRED", "FAILED", "REFUSED"]),
    source: z.enum(certificateSources).nullable(),
    notAfter: z.string().nullable(),
    /** Why the last issuance or renewal failed (the CA's reason). */
    error: z.string().nullable(),
    errorAt: z.string().nullable(),
  }),
  createdAt: z.string(),
});

const domainId = z.object({ domainId: z.string().uuid() });

/** Custom domains of services and their certificates (issue 16, part 1). */
export const domainsRouter = router({
  list: procedure("VIEWER")
    .meta({
      openapi: {
        method: "GET",
        path: "/services/{serviceId}/domains",
        tags: ["domains"],
        summary: "A service's custom domains with their verification and certificate",
      },
    })
    .input(z.object({ serviceId: z.string().uuid() }))
    .output(z.array(domainOutput))
    .query(async ({ ctx, input }) => (await listDomains(ctx.domain, input.serviceId)).map((row) => describeDomain(row, ctx.domain.now()))),
  add: procedure("DEVELOPER")
    .meta({
      openapi: {
        method: "POST",
        path: "/services/{serviceId}/domains",
        tags: ["domains"],
        summary: "Add a custom domain; it is served once verified (DNS TXT record or HTTP token)",
      },
    })
    .input(addDomainInput)
    .output(domainOutput)
    .mutation(async ({ ctx, input }) => describeDomain(await addDomain(ctx.domain, input), ctx.domain.now())),
  verify: procedure("DEVELOPER")
    .meta({ openapi: { method: "POST", path: "/domains/{domainId}/verify", tags: ["domains"], summary: "Check a domain's TXT record or HTTP token now" } })
    .input(domainId)
    .output(domainOutput)
    .mutation(async ({ ctx, input }) => describeDomain(await verifyDomain(ctx.domain, input.domainId), ctx.domain.now())),
  update: procedure("DEVELOPER")
    .meta({
      openapi: {
        method: "PATCH",
        path: "/domains/{domainId}",
        tags: ["domains"],
        summary: "Turn the HTTP to HTTPS redirect on or off, or change the ACME challenge (HTTP-01, DNS-01)",
      },
    })
    .input(updateDomainInput)
    .output(domainOutput)
    .mutation(async ({ ctx, input }) => describeDomain(await updateDomain(ctx.domain, input), ctx.domain.now())),
  remove: procedure("DEVELOPER")
    .meta({ openapi: { method: "DELETE", path: "/domains/{domainId}", tags: ["domains"], summary: "Remove a custom domain (the router stops serving it)" } })
    .input(domainId)
    .output(domainOutput)
    .mutation(async ({ ctx, input }) => describeDomain(await removeDomain(ctx.domain, input.domainId), ctx.domain.now())),
  uploadCertificate: procedure("DEVELOPER")
    .meta({
      openapi: { method: "PUT", path: "/domains/{domainId}/certificate", tags: ["domains"], summary: "Use your own certificate and key (PEM) instead of ACME" },
    })
    .input(uploadCertificateInput)
    .output(domainOutput)
    .mutation(async ({ ctx, input }) => describeDomain(await uploadCertificate(ctx.domain, input), ctx.domain.now())),
  renewCertificate: procedure("DEVELOPER")
    .meta({
      openapi: { method: "POST", path: "/domains/{domainId}/certificate/renew", tags: ["domains"], summary: "Obtain a new certificate by ACME now" },
    })
    .input(domainId)
    .output(domainOutput)
    .mutation(async ({ ctx, input }) => describeDomain(await renewCertificate(ctx.domain, input.domainId), ctx.domain.now())),
});
