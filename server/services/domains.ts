import { and, eq, inArray, not, sql, type SQL } from "drizzle-orm";
import type { Executor } from "../db/client";
import { clusters, environments, projects, serviceDomains, services } from "../db/schema";
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

/**
 * The most characters of a DNS label (RFC 1035, section 2.3.4). Resolvers, ACME CAs and the
 * `*.<suffix>` record a cluster's hostnames are usually published under all refuse a longer one.
 */
export const MAX_LABEL_LENGTH = 63;

/** Where new services would be: their environment (by project and name, new or not) on a cluster. */
export type NewServicesPlace = {
  cluster: { id: string; domainSuffix: string };
  projectId: string;
  project: string;
  environment: string;
  /** The services' names. */
  services: string[];
  /** The name the user is choosing, which a refusal says how long it may be: the service's, or the environment's of a copy. */
  chosen: "service" | "environment";
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

/** `<service>-<environment>-<project>` of services rows, as hostnameLabel makes it. */
const labelColumn = sql<string>`${services.name} || '-' || ${environments.name} || '-' || ${projects.name}`;

/** The service of the cluster (the oldest) whose hostname has one of `labels`, outside `except`. */
async function serviceWithLabel(db: Executor, clusterId: string, labels: string[], except?: SQL) {
  const [holder] = await db
    .select({ label: labelColumn, service: services.name, environment: environments.name, project: projects.name })
    .from(services)
    .innerJoin(environments, eq(environments.id, services.environmentId))
    .innerJoin(projects, eq(projects.id, environments.projectId))
    .where(and(eq(environments.clusterId, clusterId), inArray(labelColumn, labels), except))
    .orderBy(services.createdAt)
    .limit(1);
  return holder;
}

/**
 * Refuses new services whose hostname DNS would refuse: a label of more than 63 characters. Each
 * name may have 40 (dnsLabel), so three of them joined can have 122. The message gives each
 * name's length and how long the name being chosen may be.
 */
export function assertLabelsFit(place: NewServicesPlace): void {
  const longest = place.services.reduce((a, b) => (b.length > a.length ? b : a), "");
  const label = hostnameLabel(longest, place.environment, place.project);
  if (label.length <= MAX_LABEL_LENGTH) return;
  const others = place.chosen === "service" ? place.environment.length + place.project.length : longest.length + place.project.length;
  const room = MAX_LABEL_LENGTH - 2 - others;
  const what =
    place.chosen === "service" ? `environment "${place.environment}" and project "${place.project}"` : `service "${longest}" and project "${place.project}"`;
  const advice =
    room > 0
      ? `with ${what}, the ${place.chosen}'s name may have at most ${room} characters`
      : `${what} leave no room for the ${place.chosen}'s name: they must be shorter`;
  throw new AppError(
    "INVALID",
    `Service "${longest}" would be served at ${label}.${place.cluster.domainSuffix}, but a DNS name's first label may have at most ${MAX_LABEL_LENGTH} characters and "${label}" has ${label.length} (service ${longest.length}, environment ${place.environment.length}, project ${place.project.length}, and two hyphens): ${advice}`,
  );
}

/**
 * Refuses new services a hostname another service of the cluster has, naming that service, or
 * one a custom domain on the cluster has (the router would serve the domain's service there): only
 * domains added before addDomain refused names under the cluster's suffix can. The labels are
 * computed from the names rather than read from service_hostnames, so services without a row are
 * seen too (one that shared its label before the table existed, one created by the previous
 * release during a rolling upgrade). Services of the same environment are left out: a same label
 * there is the same service name, which the name's own unique key reports. A label DNS would
 * refuse is refused first.
 */
export async function assertHostnamesFree(db: Executor, place: NewServicesPlace): Promise<void> {
  if (place.services.length === 0) return;
  assertLabelsFit(place);
  const wanted = new Map(place.services.map((name) => [hostnameLabel(name, place.environment, place.project), name]));
  const sameEnvironment = and(eq(environments.projectId, place.projectId), eq(environments.name, place.environment))!;
  const holder = await serviceWithLabel(db, place.cluster.id, [...wanted.keys()], not(sameEnvironment));
  if (holder) {
    const hostname = `${holder.label}.${place.cluster.domainSuffix}`;
    throw new AppError(
      "CONFLICT",
      `Service "${wanted.get(holder.label)}" would be served at ${hostname}, the hostname of service "${holder.service}" in environment "${holder.environment}" of project "${holder.project}" on the same cluster: ${place.remedy}`,
    );
  }
  const hostnames = new Map([...wanted].map(([label, name]) => [`${label}.${place.cluster.domainSuffix}`, name]));
  const [custom] = await db
    .select({ hostname: serviceDomains.hostname, service: services.name, environment: environments.name, project: projects.name })
    .from(serviceDomains)
    .innerJoin(services, eq(services.id, serviceDomains.serviceId))
    .innerJoin(environments, eq(environments.id, services.environmentId))
    .innerJoin(projects, eq(projects.id, environments.projectId))
    .where(and(eq(environments.clusterId, place.cluster.id), inArray(serviceDomains.hostname, [...hostnames.keys()])))
    .orderBy(serviceDomains.createdAt)
    .limit(1);
  if (custom) {
    throw new AppError(
      "CONFLICT",
      `Service "${hostnames.get(custom.hostname)}" would be served at ${custom.hostname}, a custom domain of service "${custom.service}" in environment "${custom.environment}" of project "${custom.project}" on the same cluster: ${place.remedy}, or remove that domain`,
    );
  }
}

/**
 * Refuses a custom domain under the domain suffix of its service's cluster, where that cluster's
 * generated hostnames are. The router serves a verified custom domain's service before a
 * generated hostname's (engine/router/router-server.ts, routeOf), so the domain would take
 * another service's requests; and the suffix's wildcard DNS record points every name under it
 * at that router, which answers the domain's HTTP token itself: the check would prove nothing.
 * The whole suffix is refused, not only the hostnames services have now: a service created later
 * would be given the name too (assertHostnamesFree would then refuse it, for a domain nobody
 * needed there), and a rule that reads no other row has no race with a creation at the same time.
 * The suffix's own name is no service's hostname, and another cluster's suffix is another router's: both are taken.
 */
export async function assertNotGeneratedHostname(db: Executor, clusterId: string, hostname: string): Promise<void> {
  const [cluster] = await db.select({ name: clusters.name, domainSuffix: clusters.domainSuffix }).from(clusters).where(eq(clusters.id, clusterId));
  if (!cluster || !hostname.endsWith(`.${cluster.domainSuffix}`)) return;
  const label = hostname.slice(0, -cluster.domainSuffix.length - 1);
  const holder = label.includes(".") ? undefined : await serviceWithLabel(db, clusterId, [label]);
  const generated = `custom domains cannot be under ${cluster.domainSuffix}, where cluster "${cluster.name}" serves its services at <service>-<environment>-<project>.${cluster.domainSuffix}: choose a name outside it`;
  if (holder) {
    throw new AppError(
      "CONFLICT",
      `${hostname} is the hostname of service "${holder.service}" in environment "${holder.environment}" of project "${holder.project}" on the same cluster, whose requests the router would send here: ${generated}`,
    );
  }
  throw new AppError("INVALID", `${hostname}: ${generated}`);
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
