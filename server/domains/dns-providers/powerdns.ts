import dns from "node:dns";
import net from "node:net";
import type { z } from "zod";
import type { powerDnsSettings } from "./inputs";
import type { DnsProvider } from "./provider";

/**
 * PowerDNS Authoritative through its HTTP API (https://doc.powerdns.com/authoritative/http-api/):
 * the key in `X-API-Key`, TXT records changed by PATCHing the zone's rrsets. The API replaces a
 * whole rrset, so a value is added to (or removed from) the ones already at the name: another
 * certificate's challenge at the same name stays.
 */

type PowerDnsAccess = { name: string; zone: string; token: string; settings: z.infer<typeof powerDnsSettings> };

type RrSet = { name: string; type: string; records: { content: string; disabled: boolean }[] };

/** TXT contents as PowerDNS stores them: a quoted character-string. */
const quoted = (value: string) => `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"`;

/**
 * PowerDNS's reason from its JSON error body. Anything else (a proxy's page, another service at
 * that URL) is not repeated: an admin's URL must not make the control plane read out internal pages.
 */
function powerDnsError(text: string): string {
  try {
    const { error } = JSON.parse(text) as { error?: unknown };
    if (typeof error === "string") return error.slice(0, 300);
  } catch {
    // Not JSON: said below.
  }
  return "not an answer of PowerDNS's API (check the URL)";
}

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
    if (!response.ok) throw new Error(`${who} answered ${response.status}: ${powerDnsError(text)}`);
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
