import { asc, eq, sql, type SQL } from "drizzle-orm";
import type { DeploymentEvent, DeploymentStep, StepStatus } from "../../engine/protocol/events";
import { terminalStatuses } from "../../engine/protocol/events";
import type { Executor } from "../db/client";
import { deploymentEvents, deployments, environments, services } from "../db/schema";
import type { DeploymentChanged } from "../realtime/ui-protocol";
import { finishOrganizationDeletion } from "../organizations/organizations";
import { environmentLiveStatus } from "../overview/live-status";
import { requestDispatch } from "./dispatch-job";
import { projectDeployment } from "./status";
import { notifyDeploymentChange } from "../notifications/deployment-events";

export type DeploymentRow = typeof deployments.$inferSelect;

/** Channel on which every web process hears that a deployment recorded events, to tell browsers. */
export const DEPLOYMENT_CHANNEL = "slipway_deployment";

/**
 * Tells every web process (on commit: NOTIFY waits for the transaction) that a deployment was
 * requested or changed, for the pages that show it and every status it decides.
 */
export async function announceDeployment(
  db: Executor,
  row: DeploymentRow,
  lastEventId: number,
  /** Another NOTIFY sent in the same statement (a new lease's to its engine: a request is on the path of every dispatch). */
  alsoNotify?: SQL,
): Promise<void> {
  const change: DeploymentChanged = {
    deploymentId: row.id,
    environmentId: row.environmentId,
    organizationId: row.organizationId,
    status: row.status,
    lastEventId,
    ...(await environmentLiveStatus(db, row.environmentId)),
  };
  await db.execute(sql`select pg_notify(${DEPLOYMENT_CHANNEL}, ${JSON.stringify(change)})${alsoNotify ? sql`, ${alsoNotify}` : sql``}`);
}

/** Stores engine events (re-sent ones once) and refreshes the deployment's projected status. */
export async function appendEngineEvents(db: Executor, deployment: DeploymentRow, events: DeploymentEvent[]): Promise<DeploymentRow> {
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
  return refreshStatus(db, deployment);
}

/** Records an event of the control plane's own (queued, cancel requested, lease expired …). */
export async function appendControlEvent(
  db: Executor,
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
  return refreshStatus(db, deployment);
}

/**
 * Re-derives the deployment's status from all its events and caches it on the row. When the
 * deployment has just finished: the environment's next queued deployment is dispatched, and a
 * finished DELETE removes what it deleted (and an organization being deleted, with its last environment).
 */
async function refreshStatus(db: Executor, deployment: DeploymentRow): Promise<DeploymentRow> {
  const events = await db.select().from(deploymentEvents).where(eq(deploymentEvents.deploymentId, deployment.id)).orderBy(asc(deploymentEvents.id));
  const projection = projectDeployment(deployment.action, events);
  const commits = { ...deployment.commits };
  const commitDetails = { ...deployment.commitDetails };
  for (const event of events) {
    if (event.step !== "clone" || !event.serviceId) continue;
    if (event.commit) commits[event.serviceId] = event.commit;
    if (event.commitInfo) commitDetails[event.serviceId] = event.commitInfo;
  }
  const [updated] = await db
    .update(deployments)
    .set({
      status: projection.status,
      statusMessage: projection.message,
      startedAt: projection.startedAt,
      finishedAt: projection.finishedAt,
      commits,
      commitDetails,
      ...(terminalStatuses.has(projection.status) ? { leaseExpiresAt: null } : {}),
    })
    .where(eq(deployments.id, deployment.id))
    .returning();
  const row = updated!;
  await announceDeployment(db, row, events.at(-1)?.id ?? 0);
  await notifyDeploymentChange(db, deployment.status, row, events.at(-1)?.at ?? new Date());
  if (terminalStatuses.has(row.status) && !terminalStatuses.has(deployment.status)) await onFinished(db, row);
  return row;
}

async function onFinished(db: Executor, deployment: DeploymentRow): Promise<void> {
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
  await requestDispatch(db, deployment.environmentId);
}
