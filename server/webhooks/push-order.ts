import { sql } from "drizzle-orm";
import type { Executor } from "../db/client";
import { webhookDeliveries } from "../db/schema";

/**
 * Whether a push is older than the one a service was last deployed from, so that a delivery
 * redelivered by hand after an outage (GitHub's "Redeliver" sends the original payload again,
 * under a new delivery id) does not deploy an old commit over a newer one. Deliveries are
 * processed in the order they arrive, which is not the order of the pushes.
 *
 * A push's order is not its commit's: a force push back to an older commit (a rollback), or one
 * of a rebased branch, is a newer push of an older or equally dated commit, and must deploy. So
 * what is compared is the pushes themselves, by what the payloads give:
 *
 * 1. The time of the push, when both pushes have one (GitHub's `repository.pushed_at`): the
 *    earlier is older. Seconds only: pushes within one second fall through to 2.
 * 2. The `before` → `after` chain: a push that moves the branch on from the deployed commit is
 *    newer (a rollback by force push too); the push the deployed one moved the branch on from is
 *    older.
 * 3. Otherwise the order is unknown (GitLab, Bitbucket and the generic hook give no push time, and
 *    a push two or more pushes back cannot be told from a newer one after a lost delivery without
 *    the repository's history): it deploys, as every push did before.
 *
 * The same commit is never older: deploying it again changes nothing.
 */
export type PushMark = { commit: string; before: string | null; pushedAt: string | null };

export function isOlderPush(push: PushMark, deployed: PushMark): boolean {
  if (push.commit === deployed.commit) return false;
  if (push.pushedAt !== null && deployed.pushedAt !== null) {
    const [at, deployedAt] = [Date.parse(push.pushedAt), Date.parse(deployed.pushedAt)];
    if (at !== deployedAt && Number.isFinite(at) && Number.isFinite(deployedAt)) return at < deployedAt;
  }
  if (push.before !== null && push.before === deployed.commit) return false;
  return deployed.before !== null && push.commit === deployed.before;
}

/**
 * Deliveries received longer ago than this are not looked at. GitHub offers a delivery for
 * redelivery for 3 days (https://docs.github.com/en/webhooks/testing-and-troubleshooting-webhooks/redelivering-webhooks),
 * so a push deployed before the window is older than any push that can still be redelivered; the
 * window bounds what the lookup reads when a service has no recent push.
 */
const LOOKBACK = "7 days";

/**
 * For each service, the push of `ref` that last requested its deployment through the connection:
 * read from the outcomes of processed deliveries (PushOutcome: ref, commit, before, pushedAt and
 * the deployments' serviceIds), newest first. A deployment merged into a waiting one counts: it
 * is queued. Outcomes written before `before` and `pushedAt` were recorded lack them (null).
 */
export async function lastDeployedPushes(db: Executor, connectionId: string, ref: string, serviceIds: string[]): Promise<Map<string, PushMark>> {
  if (serviceIds.length === 0) return new Map();
  const rows = await db.execute<{ service_id: string; commit: string; before: string | null; pushed_at: string | null }>(sql`
    with window_start as (
      -- The first delivery settled within the window, by the partial index on received_at.
      select coalesce(
        (select seq from ${webhookDeliveries} where status <> 'PENDING' and received_at >= now() - ${LOOKBACK}::interval order by received_at limit 1),
        9223372036854775807
      ) as seq
    )
    select s.id as service_id, last.commit, last.before, last.pushed_at
    from unnest(${sql.param(serviceIds)}::uuid[]) as s(id)
    cross join lateral (
      select e->>'commit' as commit, e->>'before' as before, e->>'pushedAt' as pushed_at
      from ${webhookDeliveries} d
      cross join lateral jsonb_array_elements(case when jsonb_typeof(d.outcome->'events') = 'array' then d.outcome->'events' else '[]'::jsonb end) as e
      where d.connection_id = ${connectionId}
        and d.seq >= (select seq from window_start)
        and d.status = 'PROCESSED'
        and e->>'ref' = ${ref}
        and e->'deployments' @> jsonb_build_array(jsonb_build_object('serviceIds', jsonb_build_array(s.id)))
      order by d.seq desc
      limit 1
    ) as last`);
  return new Map(
    rows.rows
      .filter((row) => typeof row.commit === "string")
      .map((row) => [row.service_id, { commit: row.commit, before: row.before, pushedAt: row.pushed_at }]),
  );
}
