import { and, desc, eq, inArray, sql, type SQL } from "drizzle-orm";
import type { DeploymentStatus } from "../../engine/protocol/events";
import { terminalStatuses } from "../../engine/protocol/events";
import type { Executor } from "../db/client";
import { deployments, services, type ServiceRuntime } from "../db/schema";
import type { DeploymentChanged, ServiceChanged } from "../realtime/ui-protocol";

/** Channel on which every web process hears that a service's engine report changed what pages show. */
export const SERVICE_CHANGED_CHANNEL = "slipway_service_changed";

/**
 * The statuses every page shows for an environment and a service, decided here only (issue 15,
 * item 4): the overview, the project, environment and service pages all read them from
 * `organization.overview`, and the realtime stream says when they may have changed.
 */
export type EnvironmentStatus = DeploymentStatus | "EMPTY" | "NEVER_DEPLOYED";
export type ServiceStatus = DeploymentStatus | ServiceRuntime["state"] | "NEVER_DEPLOYED";

type LastDeployment = { status: DeploymentStatus; finishedAt: Date | null };

/** An environment's status: its latest deployment's, or why it has none. */
export function environmentStatus(serviceCount: number, last: LastDeployment | undefined): EnvironmentStatus {
  if (serviceCount === 0) return "EMPTY";
  return last?.status ?? "NEVER_DEPLOYED";
}

/**
 * A service's status. While a deployment that includes it is on its way, that deployment's
 * status (QUEUED, BUILDING …). Once it finished, what the engine reported of the service since
 * (running, crashed …); until the engine's next report, the deployment's outcome. So a page
 * never shows an older report (or no report, "never deployed") beside a newer deployment.
 */
export function serviceStatus(last: LastDeployment | undefined, runtime: Pick<ServiceRuntime, "state" | "reportedAt"> | null): ServiceStatus {
  if (last && !terminalStatuses.has(last.status)) return last.status;
  const reportedSince = runtime && (!last?.finishedAt || new Date(runtime.reportedAt) >= last.finishedAt);
  if (runtime && reportedSince) return runtime.state;
  return last?.status ?? "NEVER_DEPLOYED";
}

/**
 * The latest deployment that included each service (a deployment of the whole environment
 * includes all its services), of the services `where` selects.
 */
export async function latestDeploymentPerService(db: Executor, where: SQL | undefined) {
  const rows = await db
    .selectDistinctOn([services.id], { serviceId: services.id, deployment: deployments })
    .from(services)
    .innerJoin(
      deployments,
      and(eq(deployments.environmentId, services.environmentId), sql`(${deployments.serviceIds} is null or ${services.id} = any(${deployments.serviceIds}))`),
    )
    .where(where)
    .orderBy(services.id, desc(deployments.createdAt));
  return new Map(rows.map((row) => [row.serviceId, row.deployment]));
}

const MAX_SERVICES_CARRIED = 50;

/**
 * What every page shows of an environment's statuses now, carried with each change so that
 * open pages show it at once, before they re-read the rest (components/live-status.ts).
 */
export async function environmentLiveStatus(db: Executor, environmentId: string): Promise<Pick<DeploymentChanged, "environmentStatus" | "services">> {
  const [own, [last], lastOfService] = await Promise.all([
    db.select({ id: services.id, runtime: services.runtime }).from(services).where(eq(services.environmentId, environmentId)),
    db.select().from(deployments).where(eq(deployments.environmentId, environmentId)).orderBy(desc(deployments.createdAt)).limit(1),
    latestDeploymentPerService(db, eq(services.environmentId, environmentId)),
  ]);
  return {
    environmentStatus: environmentStatus(own.length, last),
    // A NOTIFY carries 8000 bytes: a larger environment's pages only re-read theirs.
    services:
      own.length > MAX_SERVICES_CARRIED
        ? []
        : own.map((service) => ({ serviceId: service.id, status: serviceStatus(lastOfService.get(service.id), service.runtime ?? null) })),
  };
}

/** {@link latestDeploymentPerService} of some services by id. */
export function latestDeploymentOf(db: Executor, serviceIds: string[]) {
  return latestDeploymentPerService(db, inArray(services.id, serviceIds));
}

/**
 * Whether an engine's new report changes what a page shows of the service: the status above,
 * its release, running commit, restarts, or a job's runs. The report's time alone does not,
 * unless it turns "deployed" into the state the engine reports.
 */
export function shownChanged(last: LastDeployment | undefined, before: ServiceRuntime | null, after: ServiceRuntime): boolean {
  if (serviceStatus(last, before) !== serviceStatus(last, after)) return true;
  if (!before) return true;
  const shown = ({ state, releaseId, restarts, commit, lastRestart, lastRun, nextRunAt, missed }: ServiceRuntime) =>
    JSON.stringify([state, releaseId, restarts, commit, lastRestart, lastRun, nextRunAt, missed]);
  return shown(before) !== shown(after);
}

/** Tells every web process (on commit) that a service shows something new, for its organization's pages. */
export async function announceServiceChange(db: Executor, change: ServiceChanged): Promise<void> {
  await db.execute(sql`select pg_notify(${SERVICE_CHANGED_CHANNEL}, ${JSON.stringify(change)})`);
}
