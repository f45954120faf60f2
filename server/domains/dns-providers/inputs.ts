import { z } from "zod";
import { customDomainName } from "../../input-schemas";

/**
 * The API's input for DNS providers (issue 16, part 1), without server imports: the dashboard's
 * form validates with these same schemas.
 */

/** "192.0.2.1", "192.0.2.1:5353", "[2001:db8::1]:53": an address Node's resolver can ask. */
function parseNameserver(value: string): string | null {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(value);
  const ipv6 = z.ipv6().safeParse(value).success;
  const [address, port] = bracketed ? [bracketed[1]!, bracketed[2]] : ipv6 ? [value, undefined] : value.split(":");
  if (!address) return null;
  const isV6 = z.ipv6().safeParse(address).success;
  if (!isV6 && !z.ipv4().safeParse(address).success) return null;
  const number = port === undefined ? 53 : Number(port);
  if (!Number.isInteger(number) || number < 1 || number > 65535) return null;
  return isV6 ? `[${address}]:${number}` : `${address}:${number}`;
}

/** PowerDNS Authoritative: its HTTP API and the nameserver its records are checked on. */
export const powerDnsSettings = z.object({
  /** The API's base URL (PowerDNS's webserver), e.g. http://ns1.example.com:8081. */
  apiUrl: z
    .string()
    .trim()
    .url("give the URL of PowerDNS's API, such as http://ns1.example.com:8081")
    .regex(/^https?:\/\//i, "the API's URL starts with http:// or https://")
    .transform((url) => url.replace(/\/+$/, "").replace(/\/api\/v1$/, "")),
  /** PowerDNS's server id in the API's paths: `localhost` unless configured otherwise. */
  serverId: z.string().trim().min(1).max(100).default("localhost"),
  /** Where the zone's records are checked before the CA looks; the API's host on port 53 when unset. */
  nameserver: z
    .string()
    .trim()
    .transform((value, ctx) => {
      const parsed = parseNameserver(value);
      if (!parsed) ctx.addIssue({ code: "custom", message: "give the nameserver as an IP address with an optional port, such as 192.0.2.1:53" });
      return parsed ?? value;
    })
    .optional(),
});

/** What each kind needs besides its token, validated at the API's edge and again when opened. */
export const dnsProviderSettings = z.discriminatedUnion("kind", [z.object({ kind: z.literal("POWERDNS"), ...powerDnsSettings.shape })]);
export type DnsProviderSettings = z.infer<typeof dnsProviderSettings>;

export const dnsProviderName = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, "a name of lowercase letters, digits and dashes, such as main-zone"));

const token = z.string().trim().min(1, "give the provider's API token").max(4096);

export const createDnsProviderInput = z.object({
  name: dnsProviderName,
  /** The zone the token edits; domains in it (the apex or names under it) may use this provider. */
  zone: customDomainName,
  settings: dnsProviderSettings,
  token,
});

export const updateDnsProviderInput = z.object({
  dnsProviderId: z.string().uuid(),
  zone: customDomainName.optional(),
  settings: dnsProviderSettings.optional(),
  /** A new token; the saved one is kept when omitted. */
  token: token.optional(),
});
