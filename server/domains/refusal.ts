import { eq } from "drizzle-orm";
import type { Executor } from "../db/client";
import { clusters, environments, serviceDomains, services } from "../db/schema";

/** What a domain's refusal depends on: the cluster its service is on. */
export type DomainCluster = { name: string; domainSuffix: string };

/** The columns of the cluster a refusal reads. */
const domainClusterColumns = { name: clusters.name, domainSuffix: clusters.domainSuffix };

/**
 * A select of custom domains with the cluster their service is on (service_domains, services,
 * environments, clusters): each row's domain, the cluster's columns refusalOf reads, and where the
 * domain is served. What every place that serves or lists domains reads.
 */
export function selectDomainsWithCluster(db: Executor) {
  return db
    .select({
      domain: serviceDomains,
      cluster: domainClusterColumns,
      clusterId: environments.clusterId,
      environmentId: environments.id,
      serviceName: services.name,
    })
    .from(serviceDomains)
    .innerJoin(services, eq(services.id, serviceDomains.serviceId))
    .innerJoin(environments, eq(environments.id, services.environmentId))
    .innerJoin(clusters, eq(clusters.id, environments.clusterId));
}

/**
 * Why the router must not serve a custom domain, in a sentence its owner is shown; null when it
 * may. addDomain and verifyDomain refuse a name under the cluster's domain suffix
 * (assertNotGeneratedHostname), but a release before them stored and verified some: served, such a
 * domain takes the requests of the service whose generated hostname it is (a verified custom
 * domain is routed first), with a certificate issued for that name. They are refused when read,
 * not rewritten by a migration: the row stays for its owner to see and remove, and a row the
 * previous release writes during a rolling upgrade is refused too. Everything that serves a domain
 * asks here: the edge state, certificate issuance, renewal and retries, and the API.
 */
export function refusalOf(hostname: string, cluster: DomainCluster): string | null {
  const { name, domainSuffix } = cluster;
  if (!hostname.endsWith(`.${domainSuffix}`)) return null;
  return `${hostname} is under ${domainSuffix}, where cluster "${name}" serves its services at <service>-<environment>-<project>.${domainSuffix}: it was added before such domains were refused, and is not served (it would take the requests of the service whose hostname it is) nor given a certificate. Remove it, and add a name outside ${domainSuffix}`;
}
