import { and, asc, desc, eq, sql } from "drizzle-orm";
import type { DeploymentStatus } from "../../engine/protocol/events";
import type { DomainContext } from "../context";
import { clusters, deployments, environments, memberships, organizations, projects, services } from "../db/schema";
import { serviceDomain } from "../services/domains";

type DeploymentRow = typeof deployments.$inferSelect;

/** Where a browser reaches a service: its domain on the cluster's router port, as the engine reported it. */
function serviceUrl(domain: string, routerPort: number | undefined): string {
  return routerPort && routerPort !== 80 ? `http://${domain}:${routerPort}` : `http://${domain}`;
}

function summary(deployment: DeploymentRow | undefined, serviceId?: string) {
  if (!deployment) return null;
  return {
    id: deployment.id,
    status: deployment.status,
    action: deployment.action,
    createdAt: deployment.createdAt.toISOString(),
    finishedAt: deployment.finishedAt?.toISOString() ?? null,
    commit: serviceId ? (deployment.commits[serviceId] ?? null) : null,
  };
}

/**
 * Everything the overview shows, in four queries: projects, environments with their cluster,
 * services, and the latest deployment of each environment and of each service.
 */
export async function organizationOverview({ db, actor }: DomainContext) {
  const org = actor.organizationId;
  const [projectRows, environmentRows, serviceRows, latestByEnvironment, latestByService] = await Promise.all([
    db.select().from(projects).where(eq(projects.organizationId, org)).orderBy(asc(projects.name)),
    db
      .select({ environment: environments, cluster: clusters })
      .from(environments)
      .innerJoin(clusters, eq(clusters.id, environments.clusterId))
      .where(eq(environments.organizationId, org))
      .orderBy(asc(environments.name)),
    db.select().from(services).where(eq(services.organizationId, org)).orderBy(asc(services.name)),
    db
      .selectDistinctOn([deployments.environmentId])
      .from(deployments)
      .where(eq(deployments.organizationId, org))
      .orderBy(deployments.environmentId, desc(deployments.createdAt)),
    db
      .selectDistinctOn([services.id], { serviceId: services.id, deployment: deployments })
      .from(services)
      .innerJoin(
        deployments,
        and(eq(deployments.environmentId, services.environmentId), sql`(${deployments.serviceIds} is null or ${services.id} = any(${deployments.serviceIds}))`),
      )
      .where(eq(services.organizationId, org))
      .orderBy(services.id, desc(deployments.createdAt)),
  ]);
  const lastOfEnvironment = new Map(latestByEnvironment.map((d) => [d.environmentId, d]));
  const lastOfService = new Map(latestByService.map((row) => [row.serviceId, row.deployment]));

  return {
    projects: projectRows.map((project) => ({
      id: project.id,
      name: project.name,
      environments: environmentRows
        .filter(({ environment }) => environment.projectId === project.id)
        .map(({ environment, cluster }) => {
          const own = serviceRows.filter((s) => s.environmentId === environment.id);
          const last = lastOfEnvironment.get(environment.id);
          const status: DeploymentStatus | "EMPTY" | "NEVER_DEPLOYED" = own.length === 0 ? "EMPTY" : (last?.status ?? "NEVER_DEPLOYED");
          return {
            id: environment.id,
            name: environment.name,
            mode: environment.mode,
            cluster: { id: cluster.id, name: cluster.name },
            status,
            services: own.map((service) => {
              const domain = serviceDomain(service.name, environment.name, project.name, cluster.domainSuffix);
              return {
                id: service.id,
                name: service.name,
                kind: service.kind,
                url: service.runtime ? serviceUrl(domain, cluster.capabilities.routerPort) : null,
                runtime: service.runtime ?? null,
                lastDeployment: summary(lastOfService.get(service.id), service.id),
              };
            }),
          };
        }),
    })),
  };
}

/** The organizations the caller belongs to, for the switcher. A token belongs to one. */
export async function myOrganizations({ db, actor }: DomainContext) {
  if (actor.type !== "user" || !actor.id) {
    const [own] = await db.select({ name: organizations.name }).from(organizations).where(eq(organizations.id, actor.organizationId));
    return [{ organizationId: actor.organizationId, name: own?.name ?? "", role: actor.role }];
  }
  return db
    .select({ organizationId: organizations.id, name: organizations.name, role: memberships.role })
    .from(memberships)
    .innerJoin(organizations, eq(organizations.id, memberships.organizationId))
    .where(eq(memberships.userId, actor.id))
    .orderBy(asc(organizations.name));
}
