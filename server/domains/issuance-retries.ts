import { and, desc, eq, inArray, isNotNull, isNull, sql } from "drizzle-orm";
import { recordAudit } from "../audit/record-audit";
import type { Services } from "../context";
import { auditEvents, serviceDomains } from "../db/schema";
import { acmeActor, announceEdgeChange, ISSUANCE_JOB_KEY_PREFIX, requestIssuance } from "./domains";
import { refusalOf, selectDomainsWithCluster } from "./refusal";

/**
 * A verified domain's first certificate, tried again by the renewal scheduler when it did not
 * come: the CA refused it (the domain was verified by its TXT record before its A record pointed
 * at the router, say), or the worker stopped during the issuance (its job had one attempt, so
 * nothing else would run it again). A renewal needs none of this: the scheduler asks for it
 * every day until it lands.
 */

/** Tries after the first, each after a longer wait; then the domain waits for a manual renew. */
export const FIRST_ISSUANCE_RETRIES = 4;

/** The wait before the nth retry, from the last failure: 1 h, 4 h, 16 h, 64 h (the scheduler runs daily). */
export const retryDelayMs = (retry: number) => 3_600_000 * 4 ** (retry - 1);

const RETRY = "certificate.retry";
/** Said on the domain when an issuance ended without recording its result (a dead worker, an unexpected error). */
export const INTERRUPTED = "the last issuance did not finish (its worker stopped during it, or it failed unexpectedly)";
export const gaveUp = (attempts: number) => `gave up after ${attempts} attempts: renew the certificate to try again`;

/**
 * Verified domains without a certificate whose issuance job is not queued or running: it failed,
 * or it was left by a dead worker (graphile-worker keeps a job out of attempts, unlocked). A job
 * still locked by a worker not yet found dead counts as running. The domain and its job are read
 * in one statement: an issuance's result commits before its job is deleted, so a domain never
 * looks abandoned while its job finishes. Refused domains (refusal.ts) get no certificate.
 */
async function abandonedFirstIssuances(services: Services) {
  const rows = await selectDomainsWithCluster(services.db).where(
    and(
      isNotNull(serviceDomains.verifiedAt),
      isNull(serviceDomains.certificatePem),
      // The job's key is issuanceJobKey(domain id).
      sql`not exists (
          select 1 from graphile_worker.jobs job
          where job.key = ${ISSUANCE_JOB_KEY_PREFIX} || ${serviceDomains.id}::text
            and (job.locked_at is not null or job.attempts < job.max_attempts)
        )`,
    ),
  );
  return rows.filter(({ domain, cluster }) => !refusalOf(domain.hostname, cluster));
}

type Domain = typeof serviceDomains.$inferSelect;

/**
 * The retries made since the domain was verified, or since a user last asked for its certificate
 * (which starts the count again), newest first.
 */
async function retriesOf(services: Services, domain: Domain) {
  const events = await services.db
    .select({ action: auditEvents.action, changes: auditEvents.changes })
    .from(auditEvents)
    .where(
      and(
        eq(auditEvents.organizationId, domain.organizationId),
        eq(auditEvents.targetId, domain.serviceId),
        inArray(auditEvents.action, [RETRY, "certificate.request"]),
        sql`${auditEvents.changes}->>'hostname' = ${domain.hostname}`,
      ),
    )
    .orderBy(desc(auditEvents.id))
    .limit(FIRST_ISSUANCE_RETRIES + 1);
  const retries: { at: string }[] = [];
  for (const event of events) {
    if (event.action !== RETRY || event.changes?.verifiedAt !== domain.verifiedAt!.toISOString()) break;
    retries.push({ at: String(event.changes.at) });
  }
  return retries;
}

/**
 * Queues the first issuances due to be tried again and says on the others, once, that no more
 * tries will be made; returns how many were queued. The reason of the last failure stays on the
 * domain (its certificate's error) until an issuance succeeds.
 */
export async function retryFirstIssuances(services: Services): Promise<number> {
  const now = services.now();
  let queued = 0;
  for (const { domain, clusterId } of await abandonedFirstIssuances(services)) {
    const retries = await retriesOf(services, domain);
    // A renew asked for after the scheduler gave up starts the count again: its note goes.
    const reason = domain.certificateError?.replace(/; gave up after \d+ attempts: .*$/, "") ?? INTERRUPTED;
    if (retries.length >= FIRST_ISSUANCE_RETRIES) {
      const final = `${reason}; ${gaveUp(retries.length + 1)}`;
      if (domain.certificateError !== final)
        await services.db.update(serviceDomains).set({ certificateError: final, certificateErrorAt: now }).where(eq(serviceDomains.id, domain.id));
      continue;
    }
    const lastTry = Math.max(domain.certificateErrorAt?.getTime() ?? 0, retries[0] ? Date.parse(retries[0].at) : 0);
    if (now.getTime() - lastTry < retryDelayMs(retries.length + 1)) continue;
    await services.db.transaction(async (tx) => {
      // A stale HTTP-01 challenge left by a dead worker is no longer served; the reason is said until the retry's result.
      const [still] = await tx
        .update(serviceDomains)
        .set({ certificateError: reason, certificateErrorAt: now, acmeChallenge: null })
        .where(and(eq(serviceDomains.id, domain.id), isNull(serviceDomains.certificatePem), isNotNull(serviceDomains.verifiedAt)))
        .returning({ id: serviceDomains.id });
      if (!still) return;
      await recordAudit(tx, acmeActor(domain.organizationId), {
        action: RETRY,
        targetType: "service",
        targetId: domain.serviceId,
        changes: { hostname: domain.hostname, verifiedAt: domain.verifiedAt!.toISOString(), at: now.toISOString(), attempt: retries.length + 2, reason },
      });
      await requestIssuance(tx, domain.id);
      if (domain.acmeChallenge) await announceEdgeChange(tx, clusterId);
      queued += 1;
    });
  }
  return queued;
}
