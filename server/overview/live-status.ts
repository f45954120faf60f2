import { and, desc, eq, gte, notExists, sql, type Placeholder, type SQL } from "drizzle-orm";
import type { PgSelect } from "drizzle-orm/pg-core";
import type { DeploymentStatus, DeploymentStep } from "../../engine/protocol/events";
import { terminalStatuses } from "../../engine/protocol/events";
import { phaseOf } from "../../engine/protocol/steps";
import type { Executor } from "../db/client";
import { deploymentEvents, deployments, services, type ServiceRuntime } from "../db/schema";
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
 * go live or fail apart, so a failed deployment may have left some of them live).
 */
export type ServiceEvents = { switched: boolean; failedStep: DeploymentStep | null; canceled: boolean };

export type LastDeployment = { status: DeploymentStatus; finishedAt: Date | null; serviceEvents?: ServiceEvents };

/** An environment's status: its latest deployment's, or why it has none. */
export function environmentStatus(serviceCount: number, last: LastDeployment | undefined): EnvironmentStatus {
  if (serviceCount === 0) return "EMPTY";
  return last?.status ?? "NEVER_DEPLOYED";
}

/**
 * What a finished deployment left of one service: DEPLOYED when it switched to its new release,
 * BUILD_ERROR or DEPLOYMENT_ERROR by the phase of its own failed step (the rule of
 * server/deployments/status.ts), CANCELED; the deployment's status when its events say nothing
 * of the service (an older deployment, or one that failed before any service started).
 */
export function outcomeOf(last: LastDeployment): DeploymentStatus {
  const events = last.serviceEvents;
  if (!events || !terminalStatuses.has(last.status)) return last.status;
  if (events.failedStep) return phaseOf(events.failedStep) === "build" ? "BUILD_ERROR" : "DEPLOYMENT_ERROR";
  if (events.canceled) return "CANCELED";
  if (events.switched) return "DEPLOYED";
  return last.status;
}

/**
 * A service's status. While a deployment that includes it is on its way, that deployment's
 * status (QUEUED, BUILDING …). Once it finished, what the engine reported of the service since
 * (running, crashed …); until the engine's next report, what the deployment left of the service
 * ({@link outcomeOf}). So a page never shows an older report (or no report, "never deployed")
 * beside a newer deployment, nor a deployment's failure on a service that went live in it.
 */
export function serviceStatus(last: LastDeployment | undefined, runtime: Pick<ServiceRuntime, "state" | "reportedAt"> | null): ServiceStatus {
  if (last && !terminalStatuses.has(last.status)) return last.status;
  const reportedSince = runtime && (!last?.finishedAt || new Date(runtime.reportedAt) >= last.finishedAt);
  if (runtime && reportedSince) return runtime.state;
  return last ? outcomeOf(last) : "NEVER_DEPLOYED";
}

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
    .select({ serviceId: services.id, deployment: deployments, switched: ofService.switched, failedStep: ofService.failedStep, canceled: ofService.canceled })
    .from(services)
    .innerJoinLateral(latest, sql`true`)
    .innerJoin(deployments, eq(deployments.id, latest.id))
    .innerJoinLateral(ofService, sql`true`)
    .where(where);
  return new Map(
    rows.map(({ serviceId, deployment, switched, failedStep, canceled }) => [serviceId, { ...deployment, serviceEvents: { switched, failedStep, canceled } }]),
  );
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
  return {
    status: deployments.status,
    finishedAt: deployments.finishedAt,
    switched: ofService.switched,
    failedStep: ofService.failedStep,
    canceled: ofService.canceled,
  };
}

/** The LastDeployment of a row read with latestDeploymentJoin's columns: none for a service never deployed. */
export function latestDeploymentOfRow(row: {
  status: DeploymentStatus | null;
  finishedAt: Date | null;
  switched: boolean | null;
  failedStep: DeploymentStep | null;
  canceled: boolean | null;
}): LastDeployment | undefined {
  if (!row.status) return undefined;
  return {
    status: row.status,
    finishedAt: row.finishedAt,
    serviceEvents: { switched: row.switched ?? false, failedStep: row.failedStep, canceled: row.canceled ?? false },
  };
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
    .select({
      switched: sql<boolean>`coalesce(bool_or(${deploymentEvents.step} = 'switch' and ${deploymentEvents.status} = 'succeeded'), false)`.as("switched"),
      failedStep:
        sql<DeploymentStep | null>`(array_agg(${deploymentEvents.step} order by ${deploymentEvents.id}) filter (where ${deploymentEvents.status} = 'failed'))[1]`.as(
          "failed_step",
        ),
      canceled: sql<boolean>`coalesce(bool_or(${deploymentEvents.status} = 'canceled'), false)`.as("canceled"),
    })
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
  // and the environment's latest deployment's status on every row. No row: the environment has no service.
  const last = latestDeploymentJoin(db);
  const environmentLatest = db
    .select({ status: deployments.status })
    .from(deployments)
    .where(eq(deployments.environmentId, environmentId))
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
