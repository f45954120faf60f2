import { and, asc, desc, eq, isNotNull, notInArray } from "drizzle-orm";
import { terminalStatuses } from "../../engine/protocol/events";
import type { DomainContext } from "../context";
import { clusters, deployments, environments, gitPreviews, memberships, organizations, projects, services } from "../db/schema";
import { serviceDomain } from "../services/domains";
import {
  environmentInProgress,
  environmentStatus,
  latestDeploymentPerService,
  outcomeOf,
  serviceStatus,
  speaksForEnvironmentSql,
  type LatestDeployment,
} from "./live-status";

type DeploymentRow = typeof deployments.$inferSelect;

/** Where a browser reaches a service: its domain on the cluster's router port, as the engine reported it. */
function serviceUrl(domain: string, routerPort: number | undefined): string {
  return routerPort && routerPort !== 80 ? `http://${domain}:${routerPort}` : `http://${domain}`;
}

/**
 * A service's last deployment as its pages show it: what that deployment did to this service
 * (F2 of the newcomer's walkthrough: a service that went live in a deployment that failed for
 * others shows DEPLOYED, not the deployment's failure), and this service's commit.
 */
function summary(deployment: LatestDeployment | undefined, serviceId: string) {
  if (!deployment) return null;
  return {
    id: deployment.id,
    status: outcomeOf(deployment),
    action: deployment.action,
    createdAt: deployment.createdAt.toISOString(),
    finishedAt: deployment.finishedAt?.toISOString() ?? null,
    commit: deployment.commits[serviceId] ?? null,
  };
}

/**
 * When an environment's latest deployment failed yet left some of its services live (issue 16:
 * services of a stage go live or fail apart), how many of how many: its header says so. Counted
 * with the outcome every service's status shows.
 */
function partlyDeployed(last: DeploymentRow | undefined, serviceIds: string[], lastOfService: Map<string, LatestDeployment>) {
  if (last?.status !== "BUILD_ERROR" && last?.status !== "DEPLOYMENT_ERROR") return null;
  const deployed = serviceIds.filter((id) => {
    const ofService = lastOfService.get(id);
    return ofService?.id === last.id && outcomeOf(ofService) === "DEPLOYED";
  }).length;
  return deployed > 0 ? { deployed, of: last.snapshot.services.length } : null;
}

/**
 * Everything the overview shows, in six queries: projects, environments with their cluster,
 * services, previews, the latest deployment that speaks for each environment and of each
 * service, and the deployments of some services still on their way. The statuses are derived in
 * live-status.ts, the one place that decides them.
 */
export async function organizationOverview({ db, actor }: DomainContext) {
  const org = actor.organizationId;
  const [projectRows, environmentRows, serviceRows, previewRows, latestByEnvironment, lastOfService, runningOfSome] = await Promise.all([
    db.select().from(projects).where(eq(projects.organizationId, org)).orderBy(asc(projects.name)),
    db
      .select({ environment: environments, cluster: clusters })
      .from(environments)
      .innerJoin(clusters, eq(clusters.id, environments.clusterId))
      .where(eq(environments.organizationId, org))
      .orderBy(asc(environments.name)),
    db.select().from(services).where(eq(services.organizationId, org)).orderBy(asc(services.name)),
    db.select().from(gitPreviews).where(eq(gitPreviews.organizationId, org)),
    db
      .selectDistinctOn([deployments.environmentId])
      .from(deployments)
      .where(and(eq(deployments.organizationId, org), speaksForEnvironmentSql))
      .orderBy(deployments.environmentId, desc(deployments.createdAt)),
    latestDeploymentPerService(db, eq(services.organizationId, org)),
    db
      .select({
        id: deployments.id,
        environmentId: deployments.environmentId,
        action: deployments.action,
        status: deployments.status,
        serviceIds: deployments.serviceIds,
        createdAt: deployments.createdAt,
      })
      .from(deployments)
      .where(and(eq(deployments.organizationId, org), isNotNull(deployments.serviceIds), notInArray(deployments.status, [...terminalStatuses]))),
  ]);
  const serviceName = new Map(serviceRows.map((service) => [service.id, service.name]));
  const lastOfEnvironment = new Map(latestByEnvironment.map((d) => [d.environmentId, d]));
  const previewOf = new Map(previewRows.map((preview) => [preview.environmentId, preview]));
  const environmentById = new Map(environmentRows.map(({ environment }) => [environment.id, environment]));
  const projectName = new Map(projectRows.map((project) => [project.id, project.name]));
  /** Where an environment came from: the one it was cloned from (a preview's blueprint), by name. */
  const sourceOf = (id: string | null) => {
    const source = id ? environmentById.get(id) : undefined;
    return source ? { id: source.id, name: source.name, projectName: projectName.get(source.projectId) ?? "" } : null;
  };

  return {
    projects: projectRows.map((project) => ({
      id: project.id,
      name: project.name,
      environments: environmentRows
        .filter(({ environment }) => environment.projectId === project.id)
        .map(({ environment, cluster }) => {
          const own = serviceRows.filter((s) => s.environmentId === environment.id);
          const preview = previewOf.get(environment.id);
          return {
            id: environment.id,
            name: environment.name,
            mode: environment.mode,
            cluster: { id: cluster.id, name: cluster.name },
            status: environmentStatus(own.length, lastOfEnvironment.get(environment.id)),
            inProgress: environmentInProgress(
              runningOfSome.filter((deployment) => deployment.environmentId === environment.id),
              (id) => serviceName.get(id),
            ),
            partlyDeployed: partlyDeployed(
              lastOfEnvironment.get(environment.id),
              own.map((service) => service.id),
              lastOfService,
            ),
            clonedFrom: sourceOf(preview?.blueprintEnvironmentId ?? environment.clonedFromId),
            expiresAt: environment.expiresAt?.toISOString() ?? null,
            preview: preview ? { number: preview.number, headBranch: preview.headBranch, closedAt: preview.closedAt?.toISOString() ?? null } : null,
            services: own.map((service) => {
              const domain = serviceDomain(service.name, environment.name, project.name, cluster.domainSuffix);
              const last = lastOfService.get(service.id);
              return {
                id: service.id,
                name: service.name,
                kind: service.kind,
                url: service.runtime ? serviceUrl(domain, cluster.capabilities.routerPort) : null,
                status: serviceStatus(last, service.runtime ?? null),
                runtime: service.runtime ?? null,
                lastDeployment: summary(last, service.id),
              };
            }),
          };
        }),
    })),
  };
}

/** The organizations the caller belongs to, for the switcher, each with when its deletion was asked for (null if it was not). A token belongs to one. */
export async function myOrganizations({ db, actor }: DomainContext) {
  const deletingAt = (at: Date | null) => at?.toISOString() ?? null;
  if (actor.type !== "user" || !actor.id) {
    const [own] = await db
      .select({ name: organizations.name, deletingAt: organizations.deletingAt })
      .from(organizations)
      .where(eq(organizations.id, actor.organizationId));
    return [{ organizationId: actor.organizationId, name: own?.name ?? "", role: actor.role, deletingAt: deletingAt(own?.deletingAt ?? null) }];
  }
  const rows = await db
    .select({ organizationId: organizations.id, name: organizations.name, role: memberships.role, deletingAt: organizations.deletingAt })
    .from(memberships)
    .innerJoin(organizations, eq(organizations.id, memberships.organizationId))
    .where(eq(memberships.userId, actor.id))
    .orderBy(asc(organizations.name));
  return rows.map((row) => ({ ...row, deletingAt: deletingAt(row.deletingAt) }));
}
