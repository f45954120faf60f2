import { z } from "zod";
import { dnsProviderKinds } from "../../db/schema";
import { createDnsProvider, describeDnsProvider, listDnsProviders, removeDnsProvider, updateDnsProvider } from "../../domains/dns-providers/credentials";
import { createDnsProviderInput, updateDnsProviderInput } from "../../domains/dns-providers/inputs";
import { procedure, router } from "../trpc";

const providerOutput = z.object({
  id: z.string(),
  name: z.string(),
  kind: z.enum(dnsProviderKinds),
  zone: z.string(),
  /** What the kind needs besides the token (PowerDNS: apiUrl, serverId, nameserver). */
  settings: z.object({ kind: z.enum(dnsProviderKinds), apiUrl: z.string(), serverId: z.string(), nameserver: z.string().optional() }),
  /** The token's last characters: the token itself is never returned. */
  tokenHint: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

const dnsProviderId = z.object({ dnsProviderId: z.string().uuid() });

/**
 * The organization's DNS providers (issue 16, part 1): API tokens that publish ACME DNS-01
 * records. Admins manage them (a token edits the organization's DNS); anyone may see which exist.
 */
export const dnsProvidersRouter = router({
  list: procedure("VIEWER")
    .meta({ openapi: { method: "GET", path: "/dns-providers", tags: ["domains"], summary: "The organization's DNS providers (tokens never returned)" } })
    .input(z.object({}))
    .output(z.array(providerOutput))
    .query(async ({ ctx }) => (await listDnsProviders(ctx.domain)).map(describeDnsProvider)),
  create: procedure("ADMIN")
    .meta({
      openapi: {
        method: "POST",
        path: "/dns-providers",
        tags: ["domains"],
        summary: "Add a DNS provider for DNS-01: the token is checked against the zone, then sealed",
      },
    })
    .input(createDnsProviderInput)
    .output(providerOutput)
    .mutation(async ({ ctx, input }) => describeDnsProvider(await createDnsProvider(ctx.domain, input))),
  update: procedure("ADMIN")
    .meta({
      openapi: { method: "PATCH", path: "/dns-providers/{dnsProviderId}", tags: ["domains"], summary: "Change a DNS provider's zone, settings or token" },
    })
    .input(updateDnsProviderInput)
    .output(providerOutput)
    .mutation(async ({ ctx, input }) => describeDnsProvider(await updateDnsProvider(ctx.domain, input))),
  remove: procedure("ADMIN")
    .meta({
      openapi: { method: "DELETE", path: "/dns-providers/{dnsProviderId}", tags: ["domains"], summary: "Remove a DNS provider no domain uses" },
    })
    .input(dnsProviderId)
    .output(providerOutput)
    .mutation(async ({ ctx, input }) => describeDnsProvider(await removeDnsProvider(ctx.domain, input.dnsProviderId))),
});
