import { and, desc, eq, sql } from "drizzle-orm";
import type { Executor } from "../db/client";
import { deploymentEvents, deployments, services } from "../db/schema";

/** The commit a service's live release was built from, and the deployment that made it live. */
export type LiveCommit = { serviceId: string; service: string; commit: string; subject: string | null; deploymentId: string };

/**
 * Per service of an environment built from git, the commit of its live release: the one of the
 * latest deployment whose events say the service switched to a new release (the clone step
 * recorded the commit). Not the latest deployment's: a rollback of one service, or a deployment
 * in which one service failed while the others went live, leaves each service at its own commit.
 * A service that never went live has none, nor one deleted since. Within `organizationId` only.
 */
export async function liveCommits(db: Executor, organizationId: string, environmentId: string): Promise<Map<string, LiveCommit>> {
  const rows = await db
    .selectDistinctOn([deploymentEvents.serviceId], {
      serviceId: deploymentEvents.serviceId,
      service: services.name,
      commit: sql<string>`${deployments.commits} ->> ${deploymentEvents.serviceId}::text`,
      subject: sql<string | null>`${deployments.commitDetails} -> ${deploymentEvents.serviceId}::text ->> 'subject'`,
      deploymentId: deployments.id,
    })
    .from(deploymentEvents)
    .innerJoin(deployments, eq(deployments.id, deploymentEvents.deploymentId))
    .innerJoin(services, eq(services.id, deploymentEvents.serviceId))
    .where(
      and(
        eq(deployments.environmentId, environmentId),
        eq(deployments.organizationId, organizationId),
        eq(deploymentEvents.step, "switch"),
        eq(deploymentEvents.status, "succeeded"),
        // A release switched to without a clone (none today) says nothing of a commit.
        sql`${deployments.commits} ? ${deploymentEvents.serviceId}::text`,
      ),
    )
    .orderBy(deploymentEvents.serviceId, desc(deploymentEvents.id));
  return new Map(rows.map((row) => [row.serviceId!, { ...row, serviceId: row.serviceId! }]));
}
