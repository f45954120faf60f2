import dns from "node:dns/promises";
import type { Agent } from "node:http";
import net from "node:net";
import ipaddr from "ipaddr.js";
import { RequestFilteringHttpAgent, RequestFilteringHttpsAgent } from "request-filtering-agent";
import { AppError } from "../errors";
import type { NotificationSettings } from "./settings";

/**
 * Where notifications may go (webhooks, and email channels' SMTP servers). By default only to
 * public addresses: a rule's URL or SMTP host is typed by any DEVELOPER, and a control plane
 * that connects wherever it is told would let them reach the instance's own network (a metadata
 * service, a database's HTTP port, the control plane itself).
 * An instance whose receivers live on its own network allows private addresses
 * (SLIPWAY_NOTIFICATIONS_ALLOW_PRIVATE=1), as the tests on 127.0.0.1 do.
 */
export type NotificationTargetPolicy = Pick<NotificationSettings, "allowPrivateTargets">;

export const ALLOW_PRIVATE_SETTING = "SLIPWAY_NOTIFICATIONS_ALLOW_PRIVATE=1";

/**
 * The range an address is in when it is not a public one (loopback, private, linkLocal,
 * uniqueLocal, unspecified, ipv4Mapped …, as ipaddr.js names them), else null: the rule
 * request-filtering-agent applies at delivery, anything but "unicast" is refused.
 */
export function nonPublicRange(address: string): string | null {
  const range = ipaddr.parse(address).range();
  return range === "unicast" ? null : range;
}

/** How a refusal names ipaddr.js's ranges (the rest by their own name). */
const RANGE_WORDS: Record<string, string> = {
  loopback: "a loopback",
  private: "a private",
  linkLocal: "a link-local",
  uniqueLocal: "a unique local (private)",
  unspecified: "an unspecified",
  ipv4Mapped: "an IPv4-mapped",
  carrierGradeNat: "a carrier-grade NAT",
};

/**
 * At save: the URL's host, resolved as delivery will resolve it, must have only public
 * addresses (a name that does not resolve yet is taken). Delivery checks again the address it connects to (deliveryAgent), since a name
 * may resolve elsewhere later (DNS rebinding).
 */
export async function assertPublicTarget(url: string, policy: NotificationTargetPolicy): Promise<void> {
  await assertPublicHost(new URL(url).hostname, policy);
}

/**
 * At save, the same rule for a host named on its own (an email channel's SMTP server): an SMTP
 * host is as much a way into the instance's network as a webhook's URL, and the attempt log
 * would say what answers there. Delivery checks again (publicAddressOf).
 */
export async function assertPublicHost(hostname: string, policy: NotificationTargetPolicy): Promise<void> {
  if (policy.allowPrivateTargets) return;
  const host = bareHost(hostname);
  let addresses: string[];
  try {
    addresses = await addressesOf(host);
  } catch {
    // A name that does not resolve yet (its DNS record is still to come) is saved: delivery checks whatever it resolves to then.
    return;
  }
  assertPublicAddresses(host, addresses);
}

/**
 * At delivery, for a connection made without an agent (SMTP): the host's addresses as it
 * resolves now, every one public, and the first of them, for the caller to connect to that
 * address and not to whatever the name resolves to a moment later. The host as given when
 * private addresses are allowed.
 */
export async function publicAddressOf(hostname: string, policy: NotificationTargetPolicy): Promise<string> {
  if (policy.allowPrivateTargets) return hostname;
  const host = bareHost(hostname);
  const addresses = await addressesOf(host);
  assertPublicAddresses(host, addresses);
  return addresses[0]!;
}

/** A host without the brackets of an IPv6 literal. */
export function bareHost(hostname: string): string {
  return hostname.replace(/^\[(.*)\]$/, "$1");
}

async function addressesOf(host: string): Promise<string[]> {
  if (net.isIP(host)) return [host];
  return (await dns.lookup(host, { all: true, verbatim: true })).map((entry) => entry.address);
}

function assertPublicAddresses(host: string, addresses: string[]): void {
  for (const address of addresses) {
    const range = nonPublicRange(address);
    if (!range) continue;
    const where = address === host ? address : `${host} (${address})`;
    throw new AppError(
      "INVALID",
      `${where} is ${RANGE_WORDS[range] ?? `a reserved (${range})`} address: notifications go to public addresses only, unless the instance allows private ones (${ALLOW_PRIVATE_SETTING})`,
    );
  }
}

const filtering = { http: new RequestFilteringHttpAgent(), https: new RequestFilteringHttpsAgent() };

/**
 * The agent a delivery connects through: one that refuses a non-public address as the name
 * resolves at connect time (request-filtering-agent), unless private addresses are allowed
 * (undefined: Node's default agent).
 */
export function deliveryAgent(url: URL, policy: NotificationTargetPolicy): Agent | undefined {
  if (policy.allowPrivateTargets) return undefined;
  return url.protocol === "https:" ? filtering.https : filtering.http;
}
