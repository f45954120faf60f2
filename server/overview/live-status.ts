import { and, desc, eq, gte, inArray, isNotNull, notExists, sql, type Placeholder, type SQL } from "drizzle-orm";
import type { PgSelect } from "drizzle-orm/pg-core";
import type { DeploymentStatus, DeploymentStep, StepStatus } from "../../engine/protocol/events";
import { terminalStatuses } from "../../engine/protocol/events";
import type { DeploymentAction } from "../../engine/protocol/snapshot";
import { phaseOf } from "../../engine/protocol/steps";
import type { Executor } from "../db/client";
import { deploymentEvents, deployments, services, type ServiceRuntime } from "../db/schema";
import { phaseStatus } from "../deployments/status";
import type { DeploymentChanged } from "../realtime/ui-protocol";

/** Channel on which every web process hears that a service's engine report changed what pages show. */
export const SERVICE_CHANGED_CHANNEL = "slipway_service_changed";

/**
 * The statuses every page shows for an environment and a service, decided here only (issue 15,
 * item 4): the overview, the project, environment and service pages all read them from
 * `organization.overview`, and the realtime stream says when they may have changed.
 */
export type EnvironmentStatus = DeploymentStatus | "EMPTY" | "NEVER_DEPLOYED";
export type ServiceStatus = DeploymentStatus | ServiceRuntime["state"] | "NEVER_DEPLOYED";

/**
 * What a deployment's recorded events say of one of its services (issue 16: services of a stage
 * go live or fail apart, so a failed deployment may have left some of them live; and while it
 * runs, each service is at its own step): whether it switched to its new release and when, its
 * first failed step, whether it was canceled, and its latest event (none: it has not started).
 */
export type ServiceEvents = {
  switched: boolean;
  failedStep: DeploymentStep | null;
  canceled: boolean;
  /** When its switch succeeded: an engine report since then describes the new release. */
  switchedAt: Date | null;
  latest: { step: DeploymentStep; status: StepStatus; at: Date } | null;
};

export type LastDeployment = {
  status: DeploymentStatus;
  finishedAt: Date | null;
  /** What it does to its services (DEPLOY when not known): what a service whose steps ended well shows. */
  action?: DeploymentAction;
  serviceEvents?: ServiceEvents;
};

/**
 * An environment's status: that of its latest deployment that speaks for the whole environment
 * ({@link speaksForEnvironment}), or why it has none.
 */
export function environmentStatus(serviceCount: number, last: LastDeployment | undefined): EnvironmentStatus {
  if (serviceCount === 0) return "EMPTY";
  return last?.status ?? "NEVER_DEPLOYED";
}

/**
 * Whether a deployment decides its environment's status: one of the whole environment always;
 * one of some of its services only once it deployed or restarted them. Deleting, stopping or
 * still deploying some services says nothing of the others: the environment keeps its status,
 * those services show theirs, and the deployment is shown beside the environment's status
 * ({@link environmentInProgress}), so that deleting one service never reads as "the environment
 * is being deleted" (F1 of the newcomer's walkthrough).
 */
export function speaksForEnvironment(deployment: Pick<typeof deployments.$inferSelect, "serviceIds" | "status" | "action">): boolean {
  if (!deployment.serviceIds) return true;
  return terminalStatuses.has(deployment.status) && (deployment.action === "DEPLOY" || deployment.action === "RESTART");
}

/** {@link speaksForEnvironment} as a condition on `deployments`, for the queries that pick an environment's latest. */
export const speaksForEnvironmentSql = sql`(${deployments.serviceIds} is null or (${inArray(deployments.status, [...terminalStatuses])} and ${inArray(deployments.action, ["DEPLOY", "RESTART"])}))`;

/** What a deployment of some services does that a page shows beside its environment's status ("deleting html"). */
export type InProgress = { deploymentId: string; action: DeploymentAction; status: DeploymentStatus; services: string[] };

/** The deployments of some of an environment's services still on their way, oldest first, with the names of those services. */
export function environmentInProgress(
  running: Pick<typeof deployments.$inferSelect, "id" | "action" | "status" | "serviceIds" | "createdAt">[],
  nameOf: (serviceId: string) => string | undefined,
): InProgress[] {
  return running
    .filter((deployment) => deployment.serviceIds && !terminalStatuses.has(deployment.status))
    .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime())
    .map((deployment) => ({
      deploymentId: deployment.id,
      action: deployment.action,
      status: deployment.status,
      services: (deployment.serviceIds ?? []).flatMap((id) => nameOf(id) ?? []),
    }));
}

/** The status of a service whose own steps ended well: its deployment's, by the action. */
const doneStatus: Record<DeploymentAction, DeploymentStatus> = { DEPLOY: "DEPLOYED", RESTART: "DEPLOYED", STOP: "STOPPED", DELETE: "DELETED" };

/** The steps whose success ends a service's part of a deployment of each action. */
const lastStepOf: Record<DeploymentAction, DeploymentStep> = { DEPLOY: "switch", RESTART: "restart", STOP: "stop", DELETE: "delete" };

/**
 * What a deployment still on its way shows of one of its services, from the service's own events
 * (F1 of the newcomer's walkthrough: one service failed while others still build, another went
 * live): its failure, CANCELED, DEPLOYED once switched (STOPPED, DELETED once its own stop or
 * delete succeeded), QUEUED before its first step, CANCELING while the deployment is canceled,
 * else the phase of its current step. The deployment's status when its events are not known.
 */
function inProgressOutcome(last: LastDeployment): DeploymentStatus {
  const events = last.serviceEvents;
  if (!events) return last.status;
  if (events.failedStep) return failureOf(events.failedStep);
  if (events.canceled) return "CANCELED";
  if (doneAt(last)) return doneStatus[last.action ?? "DEPLOY"];
  if (last.status === "CANCELING") return "CANCELING";
  const phase = events.latest ? phaseOf(events.latest.step) : null;
  return phase ? phaseStatus[phase] : "QUEUED";
}

/** When the service's own part of a deployment on its way ended well (its switch, or its stop, restart or delete); null until then. */
function doneAt(last: LastDeployment): Date | null {
  const events = last.serviceEvents;
  if (!events) return null;
  if (events.switchedAt) return events.switchedAt;
  const { latest } = events;
  return latest?.status === "succeeded" && latest.step === lastStepOf[last.action ?? "DEPLOY"] ? latest.at : null;
}

const failureOf = (step: DeploymentStep): DeploymentStatus => (phaseOf(step) === "build" ? "BUILD_ERROR" : "DEPLOYMENT_ERROR");

/**
 * What a deployment did to one service, what a page shows as the service's "last deployment".
 * Finished: DEPLOYED when it switched to its new release, BUILD_ERROR or DEPLOYMENT_ERROR by the
 * phase of its own failed step (the rule of server/deployments/status.ts), CANCELED; the
 * deployment's status when its events say nothing of the service (an older deployment, or one
 * that failed before any service started). On its way: where the service is in it ({@link inProgressOutcome}).
 */
export function outcomeOf(last: LastDeployment): DeploymentStatus {
  if (!terminalStatuses.has(last.status)) return inProgressOutcome(last);
  const events = last.serviceEvents;
  if (!events) return last.status;
  if (events.failedStep) return failureOf(events.failedStep);
  if (events.canceled) return "CANCELED";
  if (events.switched) return "DEPLOYED";
  return last.status;
}

/**
 * A service's status. While a deployment that includes it is on its way, where the service is in
 * it ({@link inProgressOutcome}), and once its own part ended well, what the engine reported of it
 * since. Once the deployment finished, what the engine reported of the service since (running,
 * crashed …); until the engine's next report, what the deployment left of the service
 * ({@link outcomeOf}). So a page never shows an older report (or no report, "never deployed")
 * beside a newer deployment, nor a deployment's failure or progress on a service that went live in it.
 */
export function serviceStatus(last: LastDeployment | undefined, runtime: Pick<ServiceRuntime, "state" | "reportedAt"> | null): ServiceStatus {
  if (last && !terminalStatuses.has(last.status)) {
    const done = doneAt(last);
    const outcome = inProgressOutcome(last);
    return done && runtime && new Date(runtime.reportedAt) >= done && !isFailure(outcome) ? runtime.state : outcome;
  }
  const reportedSince = runtime && (!last?.finishedAt || new Date(runtime.reportedAt) >= last.finishedAt);
  if (runtime && reportedSince) return runtime.state;
  return last ? outcomeOf(last) : "NEVER_DEPLOYED";
}

const isFailure = (status: DeploymentStatus) => status === "BUILD_ERROR" || status === "DEPLOYMENT_ERROR" || status === "CANCELED";

/**
 * The latest deployment that included each service (a deployment of the whole environment
 * includes all its services) and did not skip it, of the services `where` selects, with what its
 * events say of the service. A skipped service never started (what it waited for failed), so
 * the deployment before tells what it is. One query: per service, a walk back through its
 * environment's deployments (deployments_environment_idx) that stops at the first one, and the
 * events of that one for the service (deployment_events_service_idx).
 */
export async function latestDeploymentPerService(db: Executor, where: SQL | undefined) {
  const { latest, ofService } = latestDeploymentOfEachService(db);
  const rows = await db
    .select({ serviceId: services.id, deployment: deployments, ...ofServiceColumns(ofService) })
    .from(services)
    .innerJoinLateral(latest, sql`true`)
    .innerJoin(deployments, eq(deployments.id, latest.id))
    .innerJoinLateral(ofService, sql`true`)
    .where(where);
  return new Map(rows.map(({ serviceId, deployment, ...ofService }) => [serviceId, { ...deployment, serviceEvents: serviceEventsOf(ofService) }]));
}

/**
 * What a service's status needs of its latest deployment ({@link latestDeploymentPerService}), to
 * read with a query of `services`: the lateral subqueries to left-join (a service never deployed
 * has none) and the columns to select, read back by latestDeploymentOfRow. An engine report that
 * changes a service reads it with the service (server/engines/engine-session.ts): on the path of
 * every deployment, it needs no more (the whole row, its snapshot with it, took PostgreSQL more
 * than finding it).
 */
export function latestDeploymentJoin(db: Executor) {
  const { latest, ofService } = latestDeploymentOfEachService(db);
  return {
    columns: lastDeploymentColumns(ofService),
    /** The query (of `services`, dynamic) with the laterals joined. */
    joinedTo: <Query extends PgSelect>(query: Query) =>
      query
        .leftJoinLateral(latest, sql`true`)
        .leftJoin(deployments, eq(deployments.id, latest.id))
        .leftJoinLateral(ofService, sql`true`),
  };
}

type OfService = ReturnType<typeof latestDeploymentOfEachService>["ofService"];

/** What a service's status needs of its latest deployment, as columns of a query that joins latestDeploymentOfEachService's. */
function lastDeploymentColumns(ofService: OfService) {
  return { status: deployments.status, finishedAt: deployments.finishedAt, action: deployments.action, ...ofServiceColumns(ofService) };
}

/** What the events of its latest deployment say of a service, as columns (read back by serviceEventsOf). */
function ofServiceColumns(ofService: OfService) {
  return {
    switched: ofService.switched,
    failedStep: ofService.failedStep,
    canceled: ofService.canceled,
    switchedAt: ofService.switchedAt,
    latestStep: ofService.latestStep,
    latestStatus: ofService.latestStatus,
    latestAt: ofService.latestAt,
  };
}

type OfServiceRow = {
  switched: boolean | null;
  failedStep: DeploymentStep | null;
  canceled: boolean | null;
  /** Times read by a raw aggregate: text or a Date, by the driver. */
  switchedAt: string | Date | null;
  latestStep: DeploymentStep | null;
  latestStatus: StepStatus | null;
  latestAt: string | Date | null;
};

function serviceEventsOf(row: OfServiceRow): ServiceEvents {
  return {
    switched: row.switched ?? false,
    failedStep: row.failedStep,
    canceled: row.canceled ?? false,
    switchedAt: row.switchedAt === null ? null : new Date(row.switchedAt),
    latest: row.latestStep && row.latestStatus && row.latestAt ? { step: row.latestStep, status: row.latestStatus, at: new Date(row.latestAt) } : null,
  };
}

/** The LastDeployment of a row read with latestDeploymentJoin's columns: none for a service never deployed. */
export function latestDeploymentOfRow(
  row: { status: DeploymentStatus | null; finishedAt: Date | null; action: DeploymentAction | null } & OfServiceRow,
): LastDeployment | undefined {
  if (!row.status) return undefined;
  return { status: row.status, finishedAt: row.finishedAt, action: row.action ?? undefined, serviceEvents: serviceEventsOf(row) };
}

/** What a deployment's events say of a service ({@link ServiceEvents}), as aggregates of its events (read back by serviceEventsOf). */
function serviceEventsAggregate() {
  return {
    switched: sql<boolean>`coalesce(bool_or(${deploymentEvents.step} = 'switch' and ${deploymentEvents.status} = 'succeeded'), false)`.as("switched"),
    failedStep:
      sql<DeploymentStep | null>`(array_agg(${deploymentEvents.step} order by ${deploymentEvents.id}) filter (where ${deploymentEvents.status} = 'failed'))[1]`.as(
        "failed_step",
      ),
    canceled: sql<boolean>`coalesce(bool_or(${deploymentEvents.status} = 'canceled'), false)`.as("canceled"),
    switchedAt: sql<
      string | Date | null
    >`max(${deploymentEvents.at}) filter (where ${deploymentEvents.step} = 'switch' and ${deploymentEvents.status} = 'succeeded')`.as("switched_at"),
    // The service's latest event: where it is in a deployment on its way (none: not started).
    latestStep: sql<DeploymentStep | null>`(array_agg(${deploymentEvents.step} order by ${deploymentEvents.id} desc))[1]`.as("latest_step"),
    latestStatus: sql<StepStatus | null>`(array_agg(${deploymentEvents.status} order by ${deploymentEvents.id} desc))[1]`.as("latest_status"),
    latestAt: sql<string | Date | null>`(array_agg(${deploymentEvents.at} order by ${deploymentEvents.id} desc))[1]`.as("latest_at"),
  };
}

/**
 * What each of these deployments did to each service it has events of ({@link outcomeOf}), by
 * deployment then service: a service's history shows its own outcome in each row, not the
 * deployment's (F2 of the newcomer's walkthrough). One query (deployment_events_service_idx).
 */
export async function serviceOutcomes(
  db: Executor,
  rows: Pick<typeof deployments.$inferSelect, "id" | "status" | "finishedAt" | "action">[],
): Promise<Map<string, Record<string, DeploymentStatus>>> {
  const outcomes = new Map(rows.map((row) => [row.id, {} as Record<string, DeploymentStatus>]));
  if (rows.length === 0) return outcomes;
  const events = await db
    .select({ deploymentId: deploymentEvents.deploymentId, serviceId: deploymentEvents.serviceId, ...serviceEventsAggregate() })
    .from(deploymentEvents)
    .where(and(inArray(deploymentEvents.deploymentId, [...outcomes.keys()]), isNotNull(deploymentEvents.serviceId)))
    .groupBy(deploymentEvents.deploymentId, deploymentEvents.serviceId);
  const byId = new Map(rows.map((row) => [row.id, row]));
  for (const { deploymentId, serviceId, ...ofService } of events) {
    const deployment = byId.get(deploymentId)!;
    outcomes.get(deploymentId)![serviceId!] = outcomeOf({ ...deployment, serviceEvents: serviceEventsOf(ofService) });
  }
  return outcomes;
}

/** The lateral subqueries of {@link latestDeploymentPerService}, to join to `services`. */
function latestDeploymentOfEachService(db: Executor) {
  const skipped = db
    .select({ one: sql`1` })
    .from(deploymentEvents)
    .where(and(eq(deploymentEvents.deploymentId, deployments.id), eq(deploymentEvents.serviceId, services.id), eq(deploymentEvents.status, "skipped")));
  const latest = db
    .select({ id: deployments.id })
    .from(deployments)
    .where(
      and(
        eq(deployments.environmentId, services.environmentId),
        // One of the whole environment includes the services it had then, not those added since.
        gte(deployments.createdAt, services.createdAt),
        sql`(${deployments.serviceIds} is null or ${services.id} = any(${deployments.serviceIds}))`,
        notExists(skipped),
      ),
    )
    .orderBy(desc(deployments.createdAt))
    .limit(1)
    .as("latest");
  // An aggregate without a group: exactly one row, also for a deployment with no events of the service.
  const ofService = db
    .select(serviceEventsAggregate())
    .from(deploymentEvents)
    .where(and(eq(deploymentEvents.deploymentId, latest.id), eq(deploymentEvents.serviceId, services.id)))
    .as("of_service");
  return { latest, ofService };
}

export type LatestDeployment = typeof deployments.$inferSelect & { serviceEvents: ServiceEvents };

/** A change goes to every open page of the organization: a larger environment's pages re-read theirs. */
const MAX_SERVICES_CARRIED = 200;

/**
 * What every page shows of an environment's statuses now, carried with each change so that
 * open pages show it at once, before they re-read the rest (components/live-status.ts).
 */
export async function environmentLiveStatus(db: Executor, environmentId: string): Promise<Pick<DeploymentChanged, "environmentStatus" | "services">> {
  // One statement (read by each web process with a page to tell, for every change of the
  // environment's deployments): each service with its latest deployment (none: never deployed),
  // and the status of the environment's latest deployment that speaks for it on every row. No
  // row: the environment has no service.
  const last = latestDeploymentJoin(db);
  const environmentLatest = db
    .select({ status: deployments.status })
    .from(deployments)
    .where(and(eq(deployments.environmentId, environmentId), speaksForEnvironmentSql))
    .orderBy(desc(deployments.createdAt))
    .limit(1);
  const query = db
    .select({
      id: services.id,
      runtime: services.runtime,
      environmentLatest: sql<DeploymentStatus | null>`(${environmentLatest})`,
      ...last.columns,
    })
    .from(services)
    .$dynamic();
  const own = await last.joinedTo(query).where(eq(services.environmentId, environmentId));
  const latestOfEnvironment = own[0]?.environmentLatest;
  return {
    environmentStatus: environmentStatus(own.length, latestOfEnvironment ? { status: latestOfEnvironment, finishedAt: null } : undefined),
    services:
      own.length > MAX_SERVICES_CARRIED
        ? []
        : own.map((row) => ({
            serviceId: row.id,
            status: serviceStatus(latestDeploymentOfRow(row), row.runtime ?? null),
          })),
  };
}

/**
 * Whether an engine's new report changes what a page shows of the service: the status above,
 * its release, running commit, restarts, or a job's runs. The report's time alone does not,
 * unless it turns "deployed" into the state the engine reports.
 */
export function shownChanged(last: LastDeployment | undefined, before: ServiceRuntime | null, after: ServiceRuntime): boolean {
  if (serviceStatus(last, before) !== serviceStatus(last, after)) return true;
  return !before || shownFieldsChanged(before, after);
}

/** Whether two reports differ in what a page shows of them besides their time: state, release, commit, restarts, a job's runs. */
export function shownFieldsChanged(before: ServiceRuntime, after: ServiceRuntime): boolean {
  const shown = ({ state, releaseId, restarts, commit, lastRestart, lastRun, nextRunAt, missed }: ServiceRuntime) =>
    JSON.stringify([state, releaseId, restarts, commit, lastRestart, lastRun, nextRunAt, missed]);
  return shown(before) !== shown(after);
}

/**
 * Tells every web process (on commit) that a service shows something new, for its organization's
 * pages: an expression to return beside the write, with the change (a ServiceChanged as JSON) or
 * null for none.
 */
export function serviceChangeNotice(announcement: Placeholder) {
  return sql`case when ${announcement}::text is not null then pg_notify(${SERVICE_CHANGED_CHANNEL}, ${announcement}) end`;
}
