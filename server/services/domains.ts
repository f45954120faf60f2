import { and, eq, inArray, not, sql } from "drizzle-orm";
import type { Executor } from "../db/client";
import { environments, projects, services } from "../db/schema";
import { AppError, isAppError } from "../errors";

/**
 * The part of a service's hostname before its cluster's domain suffix: one DNS label, unique on
 * the cluster (service_hostnames). Names joined by hyphens can meet: `api-v2` in `prod` and `api`
 * in `v2-prod` of one project both make `api-v2-prod-<project>`.
 */
export function hostnameLabel(service: string, environment: string, project: string): string {
  return `${service}-${environment}-${project}`;
}

/** A service's hostname on its cluster: `<service>-<environment>-<project>.<cluster domain>`. */
export function serviceDomain(service: string, environment: string, project: string, suffix: string): string {
  return `${hostnameLabel(service, environment, project)}.${suffix}`;
}

/** Where new services would be: their environment (by project and name, new or not) on a cluster. */
export type NewServicesPlace = {
  cluster: { id: string; domainSuffix: string };
  projectId: string;
  project: string;
  environment: string;
  /** The services' names. */
  services: string[];
  /** What the refusal tells the user to do ("choose another name for the service"). */
  remedy: string;
};

/** The rows that reserve the new services' hostnames, inserted with the services (same transaction or statement). */
export function hostnameRows(place: NewServicesPlace, serviceIds: ReadonlyMap<string, string>) {
  return place.services.map((name) => ({
    serviceId: serviceIds.get(name)!,
    clusterId: place.cluster.id,
    label: hostnameLabel(name, place.environment, place.project),
  }));
}

/**
 * Refuses new services a hostname another service of the cluster has, naming that service. The
 * labels are computed from the names rather than read from service_hostnames, so services without
 * a row are seen too (one that shared its label before the table existed, one created by the
 * previous release during a rolling upgrade). Services of the same environment are left out: a
 * same label there is the same service name, which the name's own unique key reports.
 */
export async function assertHostnamesFree(db: Executor, place: NewServicesPlace): Promise<void> {
  if (place.services.length === 0) return;
  const wanted = new Map(place.services.map((name) => [hostnameLabel(name, place.environment, place.project), name]));
  const label = sql<string>`${services.name} || '-' || ${environments.name} || '-' || ${projects.name}`;
  const [holder] = await db
    .select({ label, service: services.name, environment: environments.name, project: projects.name })
    .from(services)
    .innerJoin(environments, eq(environments.id, services.environmentId))
    .innerJoin(projects, eq(projects.id, environments.projectId))
    .where(
      and(
        eq(environments.clusterId, place.cluster.id),
        inArray(label, [...wanted.keys()]),
        not(and(eq(environments.projectId, place.projectId), eq(environments.name, place.environment))!),
      ),
    )
    .orderBy(services.createdAt)
    .limit(1);
  if (!holder) return;
  const hostname = `${holder.label}.${place.cluster.domainSuffix}`;
  throw new AppError(
    "CONFLICT",
    `Service "${wanted.get(holder.label)}" would be served at ${hostname}, the hostname of service "${holder.service}" in environment "${holder.environment}" of project "${holder.project}" on the same cluster: ${place.remedy}`,
  );
}

const HOSTNAME_KEY = "service_hostnames_cluster_label_key";

/** The constraint PostgreSQL names in a violation, whether drizzle (or an AppError) wrapped the driver's error or not. */
function constraintOf(error: unknown): string | undefined {
  for (let current: unknown = error; current && typeof current === "object"; current = (current as { cause?: unknown }).cause) {
    const constraint = (current as { constraint?: unknown }).constraint;
    if (typeof constraint === "string") return constraint;
  }
  return undefined;
}

/**
 * Runs a write that reserves the new services' hostnames (assertHostnamesFree was passed before
 * it). Another creation that took one meanwhile fails it on the unique index: the check then runs
 * again, the other creation committed, to name the service that has it.
 */
export async function reservingHostnames<T>(db: Executor, place: NewServicesPlace, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (constraintOf(error) !== HOSTNAME_KEY) throw error;
    await assertHostnamesFree(db, place);
    // Its holder is gone again: still, this write did not happen.
    if (isAppError(error)) throw error;
    throw new AppError("CONFLICT", `A hostname of the new services was taken by another service at the same time: try again`, { cause: error });
  }
}
