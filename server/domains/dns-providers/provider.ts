import type { DnsProviderKind } from "../../db/schema";
import type { DnsProviderSettings } from "./inputs";
import { powerDns } from "./powerdns";

/**
 * A DNS hosting service Slipway publishes ACME DNS-01 records through (issue 16, part 1). One
 * module per kind behind this interface; a kind is added only with a test against the real
 * service running on 127.0.0.1 (PowerDNS Authoritative first: Debian ships it).
 */
export interface DnsProvider {
  /** Checks that the token reaches the zone; throws a sentence saying what is wrong otherwise. */
  check(): Promise<void>;
  /** Adds `value` to the TXT records at `name` (fully qualified, no trailing dot), keeping the others there. */
  addTxt(name: string, value: string): Promise<void>;
  /** Removes `value` from the TXT records at `name`; nothing to remove is not an error. */
  removeTxt(name: string, value: string): Promise<void>;
  /** The zone's authoritative DNS server ("address:port"), where a published record shows first. */
  nameserver(): Promise<string>;
}

export type DnsProviderAccess = {
  /** The name the user gave it, for error messages. */
  name: string;
  zone: string;
  settings: DnsProviderSettings;
  token: string;
};

export function openDnsProvider(access: DnsProviderAccess): DnsProvider {
  const kind: DnsProviderKind = access.settings.kind;
  switch (kind) {
    case "POWERDNS":
      return powerDns({ ...access, settings: access.settings });
  }
}

/** Whether `hostname` is the zone's apex or a name under it. */
export function isInZone(hostname: string, zone: string): boolean {
  return hostname === zone || hostname.endsWith(`.${zone}`);
}
