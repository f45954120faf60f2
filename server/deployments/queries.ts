import { and, asc, desc, eq, gt } from "drizzle-orm";
import type { DomainContext } from "../context";
import { deploymentEvents, deployments } from "../db/schema";
import { getEnvironment } from "../environments/environments";
import { notFound } from "../errors";

export async function getDeployment({ db, actor }: DomainContext, deploymentId: string) {
  const [deployment] = await db
    .select()
    .from(deployments)
    .where(and(eq(deployments.id, deploymentId), eq(deployments.organizationId, actor.organizationId)));
  if (!deployment) throw notFound("Deployment");
  return deployment;
}

export async function listDeployments(ctx: DomainContext, environmentId: string, limit = 50) {
  const { db, actor } = ctx;
  await getEnvironment(ctx, environmentId);
  return db
    .select()
    .from(deployments)
    .where(and(eq(deployments.environmentId, environmentId), eq(deployments.organizationId, actor.organizationId)))
    .orderBy(desc(deployments.createdAt))
    .limit(limit);
}

/** A deployment's events after the given event id (0 for all), in the order they were recorded. */
export async function listDeploymentEvents(ctx: DomainContext, deploymentId: string, afterId = 0) {
  const deployment = await getDeployment(ctx, deploymentId);
  return ctx.db
    .select()
    .from(deploymentEvents)
    .where(and(eq(deploymentEvents.deploymentId, deployment.id), gt(deploymentEvents.id, afterId)))
    .orderBy(asc(deploymentEvents.id));
}
