import { setTimeout as sleep } from "node:timers/promises";
import { sql, type SQL } from "drizzle-orm";
import { terminalStatuses } from "../../engine/protocol/events";
import type { Executor } from "../db/client";
import { loadEnv, type Env } from "../env";
import { MINUTE } from "../metrics/metrics";

/**
 * Bounded storage (issue 17, item 5): how many days each kind of record is kept. Deployment
 * rows themselves are kept (they hold the snapshot a rollback redeploys and the history's
 * lines); their events and build logs go after `deploymentDays`, except for the deployments a
 * page still derives a status or an output from (see {@link protectedDeployments}).
 */
export type RetentionPolicy = {
  deploymentDays: number;
  runtimeLogDays: number;
  metricDays: number;
  webhookDays: number;
  auditDays: number;
};

/** The defaults of server/env.ts, for workers started without an environment (tests, benches). */
export const defaultRetention: RetentionPolicy = retentionPolicy(loadEnv({}));

export function retentionPolicy(env: Pick<Env, Extract<keyof Env, `SLIPWAY_RETENTION_${string}`>>): RetentionPolicy {
  return {
    deploymentDays: env.SLIPWAY_RETENTION_DEPLOYMENTS_DAYS,
    runtimeLogDays: env.SLIPWAY_RETENTION_LOGS_DAYS,
    metricDays: env.SLIPWAY_RETENTION_METRICS_DAYS,
    webhookDays: env.SLIPWAY_RETENTION_WEBHOOKS_DAYS,
    auditDays: env.SLIPWAY_RETENTION_AUDIT_DAYS,
  };
}

/**
 * Each statement deletes at most `batchSize` rows, so it holds its row locks for milliseconds
 * and inserts go on beside it; `pauseMs` between statements leaves the disk to other work.
 */
export type BatchOptions = { batchSize: number; pauseMs: number };
export const defaultBatches: BatchOptions = { batchSize: 5000, pauseMs: 50 };

export type Swept = { deleted: number; statements: number };
export type RetentionOutcome = Record<
  "deploymentEvents" | "buildLogs" | "runtimeLogs" | "metrics" | "webhookDeliveries" | "webhookPushes" | "auditEvents" | "endedSessions",
  Swept
>;

const DAY_MS = 86_400_000;
const DEPLOYMENTS_PER_PAGE = 500;

/**
 * Deletes what the policy no longer keeps, oldest first, in batches. Idempotent: a second run
 * finds nothing to delete; an interrupted run is finished by the next one.
 */
export async function applyRetention(db: Executor, policy: RetentionPolicy, now: Date, batches: BatchOptions = defaultBatches): Promise<RetentionOutcome> {
  const before = (days: number) => new Date(now.getTime() - days * DAY_MS).toISOString();
  const deployments = await sweepDeployments(db, before(policy.deploymentDays), batches);
  return {
    ...deployments,
    // The partial index log_lines_runtime_at_idx is chosen for this literal predicate only.
    runtimeLogs: await deleteInBatches(db, "log_lines", sql`stream like 'service:%' and at < ${before(policy.runtimeLogDays)}::timestamptz`, batches, sql`at`),
    // Raw samples live 24 hours; downsample_metrics deletes them as it rolls them up.
    metrics: await deleteInBatches(db, "metric_samples", sql`resolution = ${MINUTE} and at < ${before(policy.metricDays)}::timestamptz`, batches, sql`at`),
    // Pending deliveries wait for the worker, however old.
    webhookDeliveries: await deleteInBatches(
      db,
      "webhook_deliveries",
      sql`status <> 'PENDING' and received_at < ${before(policy.webhookDays)}::timestamptz`,
      batches,
      sql`received_at`,
    ),
    // What orders redelivered pushes (server/webhooks/push-order.ts): a push is not redelivered
    // from Slipway once its delivery is gone, and GitHub offers redelivery for 3 days.
    webhookPushes: await deleteInBatches(db, "webhook_pushes", sql`created_at < ${before(policy.webhookDays)}::timestamptz`, batches, sql`created_at`),
    auditEvents: await deleteInBatches(db, "audit_events", sql`at < ${before(policy.auditDays)}::timestamptz`, batches, sql`at`),
    // A signed-out session is refused by its row until its cookie expires, and by its expiry after (server/auth/sessions.ts).
    endedSessions: await deleteInBatches(db, "ended_sessions", sql`expires_at < ${now.toISOString()}::timestamptz`, batches, sql`expires_at`),
  };
}

/**
 * Deletes the rows of `table` that `where` selects, `batchSize` at a time: each statement picks
 * its rows by `ctid` (the row's physical address, which every table has) from a subselect that
 * reads them in the order of an index on the time column (`orderBy`), so
 * none scans or locks more than its batch, oldest first.
 */
export async function deleteInBatches(db: Executor, table: string, where: SQL, batches: BatchOptions, orderBy?: SQL): Promise<Swept> {
  const swept: Swept = { deleted: 0, statements: 0 };
  for (;;) {
    const result = await db.execute(
      sql`delete from ${sql.identifier(table)} where ctid = any(array(select ctid from ${sql.identifier(table)} where ${where} ${orderBy ? sql`order by ${orderBy}` : sql``} limit ${batches.batchSize}))`,
    );
    swept.statements += 1;
    swept.deleted += result.rowCount ?? 0;
    if ((result.rowCount ?? 0) < batches.batchSize) return swept;
    await sleep(batches.pauseMs);
  }
}

/**
 * The deployments whose events pages still read: the latest of each environment (its status),
 * the latest including each service and the latest that deployed it (the service's status and
 * what a rollback offers), and each job's latest run with outputs (the environment's outputs).
 */
export async function protectedDeployments(db: Executor): Promise<string[]> {
  const { rows } = await db.execute<{ id: string }>(sql`
    (select distinct on (environment_id) id from deployments order by environment_id, created_at desc)
    union
    (select distinct on (s.id) d.id from services s
      join deployments d on d.environment_id = s.environment_id and (d.service_ids is null or s.id = any(d.service_ids))
      order by s.id, d.created_at desc)
    union
    (select distinct on (s.id) d.id from services s
      join deployments d on d.environment_id = s.environment_id and (d.service_ids is null or s.id = any(d.service_ids))
      where d.status = 'DEPLOYED'
      order by s.id, d.created_at desc)
    union
    (select distinct on (service_id) deployment_id from deployment_events
      where step = 'run' and status = 'succeeded' and output_keys is not null
      order by service_id, at desc)`);
  return rows.map((row) => row.id);
}

/**
 * Events and build logs of finished deployments created before `cutoff`, unless protected. Walks
 * the old deployments in creation order, a page at a time, skipping those already emptied.
 */
async function sweepDeployments(db: Executor, cutoff: string, batches: BatchOptions) {
  const kept = await protectedDeployments(db);
  const outcome = { deploymentEvents: { deleted: 0, statements: 0 }, buildLogs: { deleted: 0, statements: 0 } };
  const finished = sql.join(
    [...terminalStatuses].map((status) => sql`${status}`),
    sql`, `,
  );
  let after: { createdAt: string; id: string } | null = null;
  for (;;) {
    const page: { id: string; created_at: string }[] = (
      await db.execute<{ id: string; created_at: string }>(sql`
        select d.id, d.created_at::text from deployments d
        where d.created_at < ${cutoff}::timestamptz and d.status in (${finished})
          ${after ? sql`and (d.created_at, d.id) > (${after.createdAt}::timestamptz, ${after.id}::uuid)` : sql``}
          and not (d.id = any(${`{${kept.join(",")}}`}::uuid[]))
          and (exists (select 1 from deployment_events e where e.deployment_id = d.id)
            or exists (select 1 from log_lines l where l.stream = 'deployment:' || d.id))
        order by d.created_at, d.id
        limit ${DEPLOYMENTS_PER_PAGE}`)
    ).rows;
    if (page.length === 0) return outcome;
    const ids = `{${page.map((row) => row.id).join(",")}}`;
    const streams = `{${page.map((row) => `deployment:${row.id}`).join(",")}}`;
    add(outcome.deploymentEvents, await deleteInBatches(db, "deployment_events", sql`deployment_id = any(${ids}::uuid[])`, batches));
    add(outcome.buildLogs, await deleteInBatches(db, "log_lines", sql`stream = any(${streams}::text[])`, batches));
    const last = page[page.length - 1]!;
    after = { createdAt: last.created_at, id: last.id };
  }
}

function add(total: Swept, more: Swept) {
  total.deleted += more.deleted;
  total.statements += more.statements;
}
