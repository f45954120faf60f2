import dns from "node:dns/promises";
import type { Agent } from "node:http";
import net from "node:net";
import ipaddr from "ipaddr.js";
import { RequestFilteringHttpAgent, RequestFilteringHttpsAgent } from "request-filtering-agent";
import { AppError } from "../errors";
import type { NotificationSettings } from "./settings";

/**
 * Where webhook notifications may go. By default only to public addresses: a rule's URL is typed
 * by any DEVELOPER, and a control plane that posts wherever it is told would let them reach the
 * instance's own network (a metadata service, a database's HTTP port, the control plane itself).
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
  if (policy.allowPrivateTargets) return;
  const host = new URL(url).hostname.replace(/^\[(.*)\]$/, "$1");
  let addresses: string[];
  if (net.isIP(host)) addresses = [host];
  else {
    try {
      addresses = (await dns.lookup(host, { all: true, verbatim: true })).map((entry) => entry.address);
    } catch {
      // A name that does not resolve yet (its DNS record is still to come) is saved: delivery checks whatever it resolves to then.
      return;
    }
  }
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
