import type { Authorization } from "acme-client";
import type { ChallengeRecords } from "./challenge-records";
import type { DnsProvider } from "./dns-providers/provider";
import { waitForTxt } from "./dns-providers/propagation";

/**
 * ACME DNS-01 through a DNS provider (issue 16, part 1; RFC 8555 §8.4): the TXT record
 * `_acme-challenge.<name>` holds the key authorization's digest (acme-client passes the digest
 * for dns-01), published through the provider's API and checked on the zone's own nameserver
 * before the CA is told to look. Every record published is removed afterwards, whether the CA
 * validated it or not; each is noted in `records` before it is published and forgotten once
 * removed, so that one a dead worker leaves is removed later (challenge-records.ts).
 */
export function dnsChallenge(provider: DnsProvider, propagationWaitMs: number, records: ChallengeRecords) {
  /** Records this issuance published (or tried to) and has not removed yet. */
  const published = new Map<string, { name: string; value: string }>();
  const keyOf = (record: { name: string; value: string }) => `${record.name} ${record.value}`;
  const recordOf = (authz: Authorization, value: string) => ({ name: `_acme-challenge.${authz.identifier.value}`, value });
  return {
    async create(authz: Authorization, value: string) {
      const record = recordOf(authz, value);
      // Noted before the API call: a call that fails after the provider applied it leaves a record
      // too, and so does a worker that dies after it.
      published.set(keyOf(record), record);
      await records.note(record);
      await provider.addTxt(record.name, record.value);
      await waitForTxt(await provider.nameserver(), record.name, record.value, propagationWaitMs);
    },
    async remove(authz: Authorization, value: string) {
      const record = recordOf(authz, value);
      await provider.removeTxt(record.name, record.value);
      published.delete(keyOf(record));
      await records.forget(record);
    },
    /**
     * Removes what is still published (acme-client swallows a failed removal); says what could
     * not be removed, for the domain's error, or null.
     */
    async removeLeftovers(): Promise<string | null> {
      const problems: string[] = [];
      for (const record of published.values()) {
        try {
          await provider.removeTxt(record.name, record.value);
          published.delete(keyOf(record));
          await records.forget(record);
        } catch (error) {
          problems.push(`the TXT record at ${record.name} could not be removed (${(error as Error).message}): remove it by hand`);
        }
      }
      return problems.length > 0 ? problems.join("; ") : null;
    },
  };
}
