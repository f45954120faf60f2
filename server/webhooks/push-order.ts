import { and, desc, eq, sql } from "drizzle-orm";
import type { Executor } from "../db/client";
import { webhookPushes } from "../db/schema";

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
 * 2. The `before` → `after` chain of the pushes recorded for the branch (webhook_pushes): the
 *    commits the branch was at before the deployed push, walked back through each recorded push
 *    that moved the branch to one of them. A push to none of those commits is not older.
 * 3. A push to one of them is older when it is a recorded push that moved the branch there (the
 *    same `before`): a redelivery, also of a push a rollback undid since.
 * 4. Otherwise a push that moves the branch on from the deployed commit is newer, and so is one
 *    from another `before` than the recorded pushes to its commit (a force push back to an older
 *    commit).
 * 5. What is left is a push to a commit no recorded push moved the branch to (the one right
 *    before the deployed push, whose delivery was lost, say): older. Pushes skipped as older are
 *    recorded too, so that lost pushes redelivered newest first are each ordered, however far back.
 *
 * Pushes further back than what the branch keeps (PUSHES_KEPT_PER_BRANCH) are not older: they
 * deploy, as every push did before. The same commit is never older: deploying it again changes
 * nothing. Without a time, a push with the same `before` and `after` as one recorded behind the
 * deployed push cannot be told from that push redelivered: it is older (3), so a rolled back
 * commit pushed again the same way waits to be deployed by hand rather than a redelivery undoing a
 * rollback.
 */
export type PushMark = { commit: string; before: string | null; pushedAt: string | null };

export function isOlderPush(push: PushMark, deployed: PushMark, recorded: readonly PushMark[]): boolean {
  if (push.commit === deployed.commit) return false;
  if (push.pushedAt !== null && deployed.pushedAt !== null) {
    const [at, deployedAt] = [Date.parse(push.pushedAt), Date.parse(deployed.pushedAt)];
    if (at !== deployedAt && Number.isFinite(at) && Number.isFinite(deployedAt)) return at < deployedAt;
  }
  const arrivals = arrivalsOf(recorded);
  if (!ancestorsOf(deployed, arrivals).has(push.commit)) return false;
  const known = arrivals.get(push.commit);
  if (known?.has(push.before)) return true;
  if (push.before !== null && push.before === deployed.commit) return false;
  return known === undefined;
}

/** For each commit, the `before` of every recorded push that moved the branch to it. */
function arrivalsOf(recorded: readonly PushMark[]): Map<string, Set<string | null>> {
  const arrivals = new Map<string, Set<string | null>>();
  for (const push of recorded) {
    const befores = arrivals.get(push.commit) ?? new Set();
    befores.add(push.before);
    arrivals.set(push.commit, befores);
  }
  return arrivals;
}

/** The commits the branch was at before the deployed push, as far back as the recorded pushes link them. */
function ancestorsOf(deployed: PushMark, arrivals: Map<string, Set<string | null>>): Set<string> {
  const ancestors = new Set<string>();
  const next = [deployed.before];
  for (let commit = next.pop(); commit !== undefined; commit = next.pop()) {
    // A rollback makes a cycle: each commit is walked once.
    if (commit === null || ancestors.has(commit)) continue;
    ancestors.add(commit);
    next.push(...(arrivals.get(commit) ?? []));
  }
  return ancestors;
}

/**
 * How many of a branch's newest pushes are kept, besides each service's last deployed one: how
 * far back a redelivery is ordered by the `before` → `after` chain, and the most a lookup reads.
 */
export const PUSHES_KEPT_PER_BRANCH = 100;

/** A branch of a repository, as one connection receives its pushes. */
export type BranchKey = { connectionId: string; repository: string; branch: string };

export type RecordedPush = PushMark & { serviceIds: string[] };

/** The pushes recorded for the branch, newest first: at most PUSHES_KEPT_PER_BRANCH and one per service. */
export async function branchPushes(db: Executor, key: BranchKey): Promise<RecordedPush[]> {
  const rows = await db
    .select({ commit: webhookPushes.after, before: webhookPushes.before, pushedAt: webhookPushes.pushedAt, serviceIds: webhookPushes.serviceIds })
    .from(webhookPushes)
    .where(ofBranch(key))
    .orderBy(desc(webhookPushes.seq));
  return rows.map((row) => ({ ...row, pushedAt: row.pushedAt?.toISOString() ?? null }));
}

/** The push that last requested the service's deployment (merged into a waiting one counts: it is queued). */
export function lastDeployedPush(pushes: readonly RecordedPush[], serviceId: string): RecordedPush | undefined {
  return pushes.find((push) => push.serviceIds.includes(serviceId));
}

/**
 * Records a push of the branch, with the services it requested deployments of, and drops the
 * branch's pushes beyond the newest PUSHES_KEPT_PER_BRANCH, except a service's last deployed one
 * (while the service exists): a service whose path filters pass few pushes keeps its order.
 */
export async function recordPush(db: Executor, key: BranchKey, push: PushMark, serviceIds: string[]): Promise<void> {
  await db.insert(webhookPushes).values({
    ...key,
    before: push.before,
    after: push.commit,
    pushedAt: push.pushedAt === null ? null : new Date(push.pushedAt),
    serviceIds,
  });
  await db.execute(sql`
    delete from ${webhookPushes} p
    where ${aliasOfBranch("p", key)}
      and p.seq <= (
        select seq from ${webhookPushes} k where ${aliasOfBranch("k", key)}
        order by seq desc offset ${PUSHES_KEPT_PER_BRANCH} limit 1
      )
      and not exists (
        select 1 from unnest(p.service_ids) as s(id)
        where exists (select 1 from services where services.id = s.id)
          and not exists (select 1 from ${webhookPushes} q where ${aliasOfBranch("q", key)} and q.seq > p.seq and s.id = any(q.service_ids))
      )`);
}

function ofBranch(key: BranchKey) {
  return and(eq(webhookPushes.connectionId, key.connectionId), eq(webhookPushes.repository, key.repository), eq(webhookPushes.branch, key.branch));
}

/** ofBranch for a raw statement, on the table under `alias`. */
function aliasOfBranch(alias: string, key: BranchKey) {
  const column = (name: string) => sql.raw(`${alias}.${name}`);
  return sql`${column("connection_id")} = ${key.connectionId} and ${column("repository")} = ${key.repository} and ${column("branch")} = ${key.branch}`;
}
