import { asc, eq, getTableColumns, sql, type SQL } from "drizzle-orm";
import type { DeploymentEvent, DeploymentStep, StepStatus } from "../../engine/protocol/events";
import { terminalStatuses } from "../../engine/protocol/events";
import type { Executor } from "../db/client";
import { deploymentEvents, deployments, environments, services } from "../db/schema";
import type { DeploymentAnnounced } from "../realtime/ui-protocol";
import { finishOrganizationDeletion } from "../organizations/organizations";
import { requestDispatch } from "./dispatch-job";
import { leaseNextDeployment, tryLockEnvironment, type LeaseClock } from "./environment-queue";
import { projectDeployment } from "./status";
import { notifyDeploymentChange } from "../notifications/deployment-events";

export type DeploymentRow = typeof deployments.$inferSelect;

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
  const change: DeploymentAnnounced = {
    deploymentId: row.id,
    environmentId: row.environmentId,
    organizationId: row.organizationId,
    status: row.status,
    lastEventId,
  };
  return sql`pg_notify(${DEPLOYMENT_CHANNEL}, ${JSON.stringify(change)})`;
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
  await db
    .insert(deploymentEvents)
    .values(
      events.map((event) => ({
        deploymentId: deployment.id,
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
      })),
    )
    .onConflictDoNothing();
  return refreshStatus(db, svc, deployment, leaseExpiresAt);
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
async function refreshStatus(db: Executor, svc: LeaseClock, deployment: DeploymentRow, leaseExpiresAt?: Date): Promise<DeploymentRow> {
  const events = await db.select().from(deploymentEvents).where(eq(deploymentEvents.deploymentId, deployment.id)).orderBy(asc(deploymentEvents.id));
  const projection = projectDeployment(deployment.action, events);
  const commits = { ...deployment.commits };
  const commitDetails = { ...deployment.commitDetails };
  for (const event of events) {
    if (event.step !== "clone" || !event.serviceId) continue;
    if (event.commit) commits[event.serviceId] = event.commit;
    if (event.commitInfo) commitDetails[event.serviceId] = event.commitInfo;
  }
  const ended = terminalStatuses.has(projection.status);
  // Announced by the same statement, a round trip less on every event batch: its status is the projection's.
  const announcement = deploymentAnnouncement({ ...deployment, status: projection.status }, events.at(-1)?.id ?? 0);
  // The transaction's first UPDATE of the row, where it can be (the lease is extended here): a
  // second one checks the row's foreign keys again (PostgreSQL does for a row its own transaction
  // wrote), which waits for the environment's row lock while holding the deployment's, and a
  // cancel takes them the other way round.
  const [updated] = await db
    .update(deployments)
    .set({
      status: projection.status,
      statusMessage: projection.message,
      startedAt: projection.startedAt,
      finishedAt: projection.finishedAt,
      commits,
      commitDetails,
      ...(ended ? { leaseExpiresAt: null } : leaseExpiresAt ? { leaseExpiresAt } : {}),
    })
    .where(eq(deployments.id, deployment.id))
    .returning({ ...getTableColumns(deployments), announced: announcement });
  const { announced: _, ...row } = updated!;
  await notifyDeploymentChange(db, deployment.status, row, events.at(-1)?.at ?? new Date());
  if (ended && !terminalStatuses.has(deployment.status)) await onFinished(db, svc, row);
  return row;
}

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
  if (await tryLockEnvironment(db, environmentId)) await leaseNextDeployment(db, svc, environmentId);
  else await requestDispatch(db, environmentId);
}
