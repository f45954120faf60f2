import { asc, eq, getTableColumns, sql, type SQL } from "drizzle-orm";
import type { CommitInfo, DeploymentEvent, DeploymentStep, StepStatus } from "../../engine/protocol/events";
import { terminalStatuses } from "../../engine/protocol/events";
import type { Executor } from "../db/client";
import { jsonParam, jsonValue, placeholders, preparedOnce, timeParam, timeValue } from "../db/prepared";
import { deploymentEvents, deployments, environments, services } from "../db/schema";
import type { DeploymentAnnounced } from "../realtime/ui-protocol";
import { finishOrganizationDeletion } from "../organizations/organizations";
import { requestDispatch } from "./dispatch-job";
import { tryLeaseNextDeployment, type LeaseClock } from "./environment-queue";
import { projectDeployment } from "./status";
import { deploymentTransitions, notifyDeploymentChange } from "../notifications/deployment-events";
import { environmentRules } from "../notifications/enqueue";

export type DeploymentRow = typeof deployments.$inferSelect;
type DeploymentEventRow = typeof deploymentEvents.$inferSelect;

/** Channel on which every web process hears that a deployment recorded events, to tell browsers. */
export const DEPLOYMENT_CHANNEL = "slipway_deployment";

/** What an announcement says of the deployment. */
type AnnouncedRow = Pick<DeploymentRow, "id" | "environmentId" | "organizationId" | "status">;

/**
 * Tells every web process (on commit: NOTIFY waits for the transaction) that a deployment was
 * requested or changed. The statuses it decides are read by the web processes that have a page
 * to tell (server/realtime/ui-gateway.ts), after the commit, not here: most changes have nobody
 * watching, and reading them took a quarter of the database's time in a fleet (issue 17).
 */
export async function announceDeployment(
  db: Executor,
  row: AnnouncedRow,
  lastEventId: number,
  /** Another NOTIFY sent in the same statement (a new lease's to its engine: a request is on the path of every dispatch). */
  alsoNotify?: SQL,
): Promise<void> {
  await db.execute(sql`select ${deploymentAnnouncement(row, lastEventId)}${alsoNotify ? sql`, ${alsoNotify}` : sql``}`);
}

/** The NOTIFY of {@link announceDeployment}, as an expression, for a statement that sends it with its own work. */
function deploymentAnnouncement(row: AnnouncedRow, lastEventId: number): SQL {
  return sql`pg_notify(${DEPLOYMENT_CHANNEL}, ${announcementOf(row, lastEventId)})`;
}

/** What {@link announceDeployment} tells, as the notification's payload. */
export function announcementOf(row: AnnouncedRow, lastEventId: number): string {
  const change: DeploymentAnnounced = {
    deploymentId: row.id,
    environmentId: row.environmentId,
    organizationId: row.organizationId,
    status: row.status,
    lastEventId,
  };
  return JSON.stringify(change);
}

/**
 * Stores engine events (re-sent ones once) and refreshes the deployment's projected status. A
 * batch that ends the deployment (endsDeployment) is recorded holding the environment's row lock,
 * taken before the deployment's row (server/engines/engine-session.ts): its end leases the next one.
 */
export async function appendEngineEvents(
  db: Executor,
  svc: LeaseClock,
  deployment: DeploymentRow,
  events: DeploymentEvent[],
  /** The lease's new expiry, when the batch extends it: written with the status, in one UPDATE (see refreshStatus). */
  leaseExpiresAt?: Date,
): Promise<DeploymentRow> {
  const prepared = events.length <= PREPARED_BATCHES ? insertEventBatch[events.length - 1] : undefined;
  if (prepared) {
    const all = await prepared(db).insertAndRead.execute(eventBatchValues(deployment.id, events));
    return refreshStatus(db, svc, deployment, all, leaseExpiresAt);
  }
  await db
    .insert(deploymentEvents)
    .values(events.map((event) => eventRow(deployment.id, event)))
    .onConflictDoNothing();
  return refreshStatus(db, svc, deployment, undefined, leaseExpiresAt);
}

function eventRow(deploymentId: string, event: DeploymentEvent) {
  return {
    deploymentId,
    seq: event.seq,
    serviceId: event.serviceId,
    step: event.step,
    status: event.status,
    message: event.message ?? null,
    durationMs: event.durationMs ?? null,
    commit: event.commit ?? null,
    commitInfo: event.commitInfo ?? null,
    outputKeys: event.outputKeys ?? null,
    at: new Date(event.at),
  };
}

/**
 * Event batches of up to this many events (an engine sends a few at a time) are inserted by a
 * statement prepared for their size (see preparedOnce), built on first use, which reads every
 * event of the deployment back in the same round trip; a larger one, as an engine that catches
 * up after a disconnection sends, is built as it comes, and read by a statement of its own.
 */
const PREPARED_BATCHES = 16;

/** The columns of an event a batch's statement takes per row: as they are, and JSON (see jsonParam). */
const EVENT_COLUMNS = ["seq", "serviceId", "step", "status", "message", "durationMs", "commit", "at"] as const;
const EVENT_JSON_COLUMNS = ["commitInfo", "outputKeys"] as const;

const insertEventBatch = Array.from({ length: PREPARED_BATCHES }, (_, index) =>
  preparedOnce((db) => {
    const rows = Array.from({ length: index + 1 }, (_, row) => ({
      deploymentId: sql.placeholder("deploymentId"),
      ...placeholders(EVENT_COLUMNS, String(row)),
      commitInfo: jsonParam<CommitInfo>(`commitInfo${row}`),
      outputKeys: jsonParam<string[]>(`outputKeys${row}`),
    }));
    const inserted = db.$with("inserted").as(db.insert(deploymentEvents).values(rows).onConflictDoNothing().returning());
    // A statement's reads do not see the rows it inserts: the batch's come from its RETURNING (a
    // re-sent event, skipped, is in the table already). The WITH of an insert must be the
    // statement's own, so the union is a subquery of it.
    const all = db
      .select()
      .from(deploymentEvents)
      .where(eq(deploymentEvents.deploymentId, sql.placeholder("deploymentId")))
      .unionAll(db.select().from(inserted))
      .as("all_events");
    return {
      insertAndRead: db
        .with(inserted)
        .select()
        .from(all)
        .orderBy(asc(all.id))
        .prepare(`deployment_events_insert_${index + 1}`),
    };
  }),
);

/** The values of insertEventBatch's statement for `events`. */
function eventBatchValues(deploymentId: string, events: DeploymentEvent[]): Record<string, unknown> {
  const values: Record<string, unknown> = { deploymentId };
  events.forEach((event, row) => {
    const stored = eventRow(deploymentId, event);
    for (const column of EVENT_COLUMNS) values[`${column}${row}`] = stored[column];
    for (const column of EVENT_JSON_COLUMNS) values[`${column}${row}`] = jsonValue(stored[column]);
  });
  return values;
}

/** Records an event of the control plane's own (queued, cancel requested, lease expired …). */
export async function appendControlEvent(
  db: Executor,
  svc: LeaseClock,
  deployment: DeploymentRow,
  event: { step: DeploymentStep; status: StepStatus; message?: string; at: Date },
): Promise<DeploymentRow> {
  await db.insert(deploymentEvents).values({
    deploymentId: deployment.id,
    seq: sql`nextval('control_plane_event_seq')`,
    serviceId: null,
    step: event.step,
    status: event.status,
    message: event.message ?? null,
    at: event.at,
  });
  return refreshStatus(db, svc, deployment);
}

/**
 * Re-derives the deployment's status from all its events and caches it on the row. When the
 * deployment has just finished: the environment's next queued deployment is leased, and a
 * finished DELETE removes what it deleted (and an organization being deleted, with its last environment).
 */
async function refreshStatus(
  db: Executor,
  svc: LeaseClock,
  deployment: DeploymentRow,
  /** Every event of the deployment, in order, when the caller read them already; read here otherwise. */
  recorded?: DeploymentEventRow[],
  leaseExpiresAt?: Date,
): Promise<DeploymentRow> {
  const statements = statusStatements(db);
  const events = recorded ?? (await statements.eventsOf.execute({ deploymentId: deployment.id }));
  const projection = projectDeployment(deployment.action, events);
  const commits = { ...deployment.commits };
  const commitDetails = { ...deployment.commitDetails };
  for (const event of events) {
    if (event.step !== "clone" || !event.serviceId) continue;
    if (event.commit) commits[event.serviceId] = event.commit;
    if (event.commitInfo) commitDetails[event.serviceId] = event.commitInfo;
  }
  const ended = terminalStatuses.has(projection.status);
  // The transaction's first UPDATE of the row, where it can be (the lease is extended here): a
  // second one checks the row's foreign keys again (PostgreSQL does for a row its own transaction
  // wrote), which waits for the environment's row lock while holding the deployment's, and a
  // cancel takes them the other way round. It announces the change too, a round trip less on
  // every event batch: its status is the projection's.
  const [updated] = await statements.refresh.execute({
    deploymentId: deployment.id,
    status: projection.status,
    statusMessage: projection.message,
    startedAt: timeValue(projection.startedAt),
    finishedAt: timeValue(projection.finishedAt),
    commits: jsonValue(commits),
    commitDetails: jsonValue(commitDetails),
    // An ended deployment holds no lease; a batch without a new expiry leaves it as it is.
    keepLease: !ended && !leaseExpiresAt,
    leaseExpiresAt: ended ? null : timeValue(leaseExpiresAt),
    updatedAt: timeValue(new Date()),
    announcement: announcementOf({ ...deployment, status: projection.status }, events.at(-1)?.id ?? 0),
    notified: deploymentTransitions(deployment.action, deployment.status, projection.status),
  });
  const { announced: _, rules, ...row } = updated!;
  await notifyDeploymentChange(db, deployment.status, row, rules, events.at(-1)?.at ?? new Date());
  if (ended && !terminalStatuses.has(deployment.status)) await onFinished(db, svc, row);
  return row;
}

/** The statements of every event batch (see preparedOnce). */
const statusStatements = preparedOnce((db) => ({
  eventsOf: db
    .select()
    .from(deploymentEvents)
    .where(eq(deploymentEvents.deploymentId, sql.placeholder("deploymentId")))
    .orderBy(asc(deploymentEvents.id))
    .prepare("deployment_events_of"),
  refresh: db
    .update(deployments)
    .set({
      status: sql`${sql.placeholder("status")}`,
      statusMessage: sql`${sql.placeholder("statusMessage")}`,
      startedAt: timeParam("startedAt"),
      finishedAt: timeParam("finishedAt"),
      commits: jsonParam("commits"),
      commitDetails: jsonParam("commitDetails"),
      leaseExpiresAt: sql`case when ${sql.placeholder("keepLease")}::boolean then ${deployments.leaseExpiresAt} else ${timeParam("leaseExpiresAt")} end`,
      // Every value a placeholder, updated_at too: its $onUpdate would run once, when this is prepared.
      updatedAt: timeParam("updatedAt"),
    })
    .where(eq(deployments.id, sql.placeholder("deploymentId")))
    .returning({
      ...getTableColumns(deployments),
      announced: sql`pg_notify(${DEPLOYMENT_CHANNEL}, ${sql.placeholder("announcement")})`,
      // The rules of the notifications the change sends (none: an empty list), read with it.
      rules: environmentRules(deployments.organizationId, deployments.environmentId, sql.placeholder("notified")),
    })
    .prepare("refresh_deployment_status"),
}));

async function onFinished(db: Executor, svc: LeaseClock, deployment: DeploymentRow): Promise<void> {
  if (deployment.status === "DELETED") {
    if (deployment.serviceIds) {
      for (const serviceId of deployment.serviceIds) await db.delete(services).where(eq(services.id, serviceId));
    } else {
      // Deleting the environment cascades to its services and deployments, this one included.
      await db.delete(environments).where(eq(environments.id, deployment.environmentId));
      // The last environment of an organization being deleted takes the organization with it.
      await finishOrganizationDeletion(db, deployment.organizationId);
      return;
    }
  }
  await leaseNextAfterEnd(db, svc, deployment.environmentId);
}

/**
 * The environment's next deployment, in the transaction that records the end of the one before
 * it: leased at once, its engine told on commit, and nothing at all when none waits (issue 17:
 * a worker job per end was the busiest work of the database under a fleet).
 *
 * Under the environment's row lock, which requests hold while they read the queue: a request
 * that read it before this end committed saw the deployment running and queued behind it, and
 * it committed before this transaction took the lock, so the queue read here finds it; one
 * that reads it after waits for this commit and finds nothing running, so it leases its own.
 *
 * Lock order: this transaction already holds the ended deployment's row (its UPDATE above); a
 * cancel holds the environment's lock and waits for that row. Waiting here for the environment's
 * lock could close that cycle, so it is never waited for: the callers that end a deployment take
 * it before the deployment's row (an ending engine batch, server/engines/engine-session.ts; the
 * lease reconciler and a cancel), and it is found held by this transaction. Should another hold
 * it (a caller that did not take it first), the environment's dispatch job leases the next
 * deployment once this commits, as it did before: correct, one worker hop later.
 */
async function leaseNextAfterEnd(db: Executor, svc: LeaseClock, environmentId: string): Promise<void> {
  if (!(await tryLeaseNextDeployment(db, svc, environmentId))) await requestDispatch(db, environmentId);
}
