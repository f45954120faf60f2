import dns from "node:dns";
import net from "node:net";
import { z } from "zod";
import type { DnsProvider } from "./provider";

/**
 * PowerDNS Authoritative through its HTTP API (https://doc.powerdns.com/authoritative/http-api/):
 * the key in `X-API-Key`, TXT records changed by PATCHing the zone's rrsets. The API replaces a
 * whole rrset, so a value is added to (or removed from) the ones already at the name: another
 * certificate's challenge at the same name stays.
 */

/** "192.0.2.1", "192.0.2.1:5353", "[2001:db8::1]:53": an address Node's resolver can ask. */
function parseNameserver(value: string): string | null {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(value);
  const [address, port] = bracketed ? [bracketed[1]!, bracketed[2]] : value.includes(":") && net.isIPv6(value) ? [value, undefined] : value.split(":");
  if (!address || !net.isIP(address)) return null;
  const number = port === undefined ? 53 : Number(port);
  if (!Number.isInteger(number) || number < 1 || number > 65535) return null;
  return net.isIPv6(address) ? `[${address}]:${number}` : `${address}:${number}`;
}

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
      if (!parsed) ctx.addIssue({ code: z.ZodIssueCode.custom, message: "give the nameserver as an IP address with an optional port, such as 192.0.2.1:53" });
      return parsed ?? value;
    })
    .optional(),
});

type PowerDnsAccess = { name: string; zone: string; token: string; settings: z.infer<typeof powerDnsSettings> };

type RrSet = { name: string; type: string; records: { content: string; disabled: boolean }[] };

/** TXT contents as PowerDNS stores them: a quoted character-string. */
const quoted = (value: string) => `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"`;

export function powerDns(access: PowerDnsAccess): DnsProvider {
  const { apiUrl, serverId } = access.settings;
  const zoneId = `${access.zone}.`;
  const zoneUrl = `${apiUrl}/api/v1/servers/${encodeURIComponent(serverId)}/zones/${encodeURIComponent(zoneId)}`;
  const who = `PowerDNS at ${apiUrl} (DNS provider "${access.name}")`;

  async function call(method: "GET" | "PATCH", body?: unknown): Promise<unknown> {
    let response: Response;
    try {
      response = await fetch(zoneUrl, {
        method,
        headers: { "X-API-Key": access.token, Accept: "application/json", ...(body ? { "Content-Type": "application/json" } : {}) },
        body: body ? JSON.stringify(body) : undefined,
        redirect: "error",
        signal: AbortSignal.timeout(15_000),
      });
    } catch (error) {
      const cause = (error as { cause?: NodeJS.ErrnoException }).cause;
      throw new Error(`${who} cannot be reached: ${cause?.code ?? cause?.message ?? (error as Error).message}`);
    }
    const text = await response.text();
    if (response.status === 401 || response.status === 403)
      throw new Error(`${who} refused the API key (${response.status}): the provider's token must be PowerDNS's current api-key`);
    if (response.status === 404) throw new Error(`${who} has no zone ${access.zone} on server "${serverId}"`);
    if (!response.ok) {
      let reason = text.slice(0, 300);
      try {
        reason = (JSON.parse(text) as { error?: string }).error ?? reason;
      } catch {
        // Not JSON (a proxy's page): its text is the reason.
      }
      throw new Error(`${who} answered ${response.status}: ${reason}`);
    }
    return text ? (JSON.parse(text) as unknown) : null;
  }

  async function txtValuesAt(fqdn: string): Promise<string[]> {
    const zone = (await call("GET")) as { rrsets?: RrSet[] };
    const rrset = zone.rrsets?.find((set) => set.type === "TXT" && set.name === fqdn);
    return rrset?.records.map((record) => record.content) ?? [];
  }

  async function replaceTxt(fqdn: string, contents: string[]) {
    const rrset =
      contents.length === 0
        ? { name: fqdn, type: "TXT", changetype: "DELETE" }
        : // A short TTL: a challenge record is looked up once and removed minutes later.
          { name: fqdn, type: "TXT", ttl: 60, changetype: "REPLACE", records: contents.map((content) => ({ content, disabled: false })) };
    await call("PATCH", { rrsets: [rrset] });
  }

  return {
    async check() {
      await call("GET");
    },
    async addTxt(name, value) {
      const fqdn = `${name}.`;
      const existing = await txtValuesAt(fqdn);
      if (!existing.includes(quoted(value))) await replaceTxt(fqdn, [...existing, quoted(value)]);
    },
    async removeTxt(name, value) {
      const fqdn = `${name}.`;
      const existing = await txtValuesAt(fqdn);
      if (existing.includes(quoted(value)))
        await replaceTxt(
          fqdn,
          existing.filter((content) => content !== quoted(value)),
        );
    },
    async nameserver() {
      if (access.settings.nameserver) return access.settings.nameserver;
      const host = new URL(apiUrl).hostname.replace(/^\[|\]$/g, "");
      const address = net.isIP(host) ? host : (await dns.promises.lookup(host)).address;
      return net.isIPv6(address) ? `[${address}]:53` : `${address}:53`;
    },
  };
}
