import { and, eq, lt } from "drizzle-orm";
import type { Services } from "../context";
import { acmeDnsRecords } from "../db/schema";
import { openProviderFor } from "./dns-providers/credentials";
import { openDnsProvider, type DnsProvider } from "./dns-providers/provider";

/**
 * The DNS-01 TXT records issuances publish, noted in PostgreSQL (acme_dns_records) before they
 * are published and forgotten once removed. An issuance removes its own records when it ends; a
 * worker that dies during one cannot, and the values were only in its memory. What is noted and
 * older than an issuance can last is a leftover: the next issuance through the same provider and
 * the daily renewal task remove it.
 */

/**
 * A record noted longer ago than this belongs to an issuance that has ended, one way or another:
 * an issuance waits 2 minutes at most for its record to show, then about a minute for the CA.
 * Younger ones are left alone: another issuance of the same name may be using its own right now
 * (a renewal asked for while one runs is a second job).
 */
export const LEFTOVER_AFTER_MS = 3_600_000;

export type TxtRecord = { name: string; value: string };

/** Where one issuance notes what it publishes through its domain's provider. */
export type ChallengeRecords = {
  /** Before the record is published: a worker that dies right after the provider's API applied it leaves it noted. */
  note(record: TxtRecord): Promise<void>;
  /** Once the record is removed from the zone. */
  forget(record: TxtRecord): Promise<void>;
};

export function challengeRecordsOf(services: Services, provider: { id: string; organizationId: string }): ChallengeRecords {
  const same = (record: TxtRecord) =>
    and(eq(acmeDnsRecords.dnsProviderId, provider.id), eq(acmeDnsRecords.name, record.name), eq(acmeDnsRecords.value, record.value));
  return {
    async note(record) {
      const createdAt = services.now();
      await services.db
        .insert(acmeDnsRecords)
        .values({ organizationId: provider.organizationId, dnsProviderId: provider.id, ...record, createdAt })
        // Published again: it is in use again, not a leftover.
        .onConflictDoUpdate({ target: [acmeDnsRecords.dnsProviderId, acmeDnsRecords.name, acmeDnsRecords.value], set: { createdAt, removeError: null } });
    },
    async forget(record) {
      await services.db.delete(acmeDnsRecords).where(same(record));
    },
  };
}

/**
 * Removes the leftover records (noted more than LEFTOVER_AFTER_MS ago) from their zones, all of
 * them or those of one provider (already opened by an issuance). One that cannot be removed stays
 * noted with the reason (remove_error) and is tried again the next time. Returns how many went.
 */
export async function removeLeftoverRecords(services: Services, only?: { dnsProviderId: string; provider: DnsProvider }): Promise<number> {
  const noted = await services.db
    .select()
    .from(acmeDnsRecords)
    .where(
      and(
        lt(acmeDnsRecords.createdAt, new Date(services.now().getTime() - LEFTOVER_AFTER_MS)),
        only ? eq(acmeDnsRecords.dnsProviderId, only.dnsProviderId) : undefined,
      ),
    );
  const byProvider = new Map<string, typeof noted>();
  for (const row of noted) byProvider.set(row.dnsProviderId, [...(byProvider.get(row.dnsProviderId) ?? []), row]);
  let removed = 0;
  for (const [providerId, rows] of byProvider) {
    const failed = (row: (typeof rows)[number], error: unknown) =>
      services.db
        .update(acmeDnsRecords)
        .set({ removeError: (error as Error).message.slice(0, 1000) })
        .where(eq(acmeDnsRecords.id, row.id));
    let provider: DnsProvider;
    try {
      provider = only?.provider ?? openDnsProvider((await openProviderFor(services, rows[0]!.organizationId, providerId)).access);
    } catch (error) {
      for (const row of rows) await failed(row, error);
      continue;
    }
    for (const row of rows) {
      try {
        await provider.removeTxt(row.name, row.value);
        await services.db.delete(acmeDnsRecords).where(eq(acmeDnsRecords.id, row.id));
        removed++;
      } catch (error) {
        await failed(row, error);
      }
    }
  }
  return removed;
}
