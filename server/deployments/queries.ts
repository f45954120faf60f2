import { and, asc, desc, eq, gt, lt } from "drizzle-orm";
import { removedDeploymentMessage } from "../audit/removed-deployment";
import type { DomainContext } from "../context";
import { deploymentEvents, deployments } from "../db/schema";
import { getEnvironment } from "../environments/environments";
import { AppError, notFound } from "../errors";
import { cipherFor } from "../secrets/organization-cipher";
import { deploymentChanges, previousDeployments, type ComparedDeployment, type ServiceChanges } from "./changes";
import { openSnapshot } from "./snapshot";

export async function getDeployment({ db, actor }: DomainContext, deploymentId: string) {
  const [deployment] = await db
    .select()
    .from(deployments)
    .where(and(eq(deployments.id, deploymentId), eq(deployments.organizationId, actor.organizationId)));
  if (!deployment) {
    // Deleting an environment takes its deployments with it: the audit log can say so.
    const removed = await removedDeploymentMessage(db, actor.organizationId, deploymentId);
    throw removed ? new AppError("NOT_FOUND", removed) : notFound("Deployment");
  }
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

/** How far back a deployment looks for the last one that deployed each of its services. */
const CHANGES_LOOKBACK = 50;

/**
 * What a deployment changes since the last successful DEPLOY of each of its services (changes.ts).
 * The snapshots are opened here, in the control plane, only to compare values: the answer holds
 * keys and configuration paths, never a variable's value or any secret material.
 */
export async function getDeploymentChanges(ctx: DomainContext, deploymentId: string): Promise<ServiceChanges[]> {
  const deployment = await getDeployment(ctx, deploymentId);
  // A stop or a delete changes no code, configuration or variable: there is nothing to compare.
  if (deployment.action !== "DEPLOY" && deployment.action !== "RESTART") return [];
  const earlier = await ctx.db
    .select()
    .from(deployments)
    .where(
      and(
        eq(deployments.environmentId, deployment.environmentId),
        eq(deployments.action, "DEPLOY"),
        eq(deployments.status, "DEPLOYED"),
        lt(deployments.createdAt, deployment.createdAt),
      ),
    )
    .orderBy(desc(deployments.createdAt))
    .limit(CHANGES_LOOKBACK);
  const cipher = await cipherFor(ctx.db, ctx.keyring, deployment.organizationId);
  const opened = (row: typeof deployment): ComparedDeployment => ({ ...row, snapshot: openSnapshot(cipher, row.id, row.snapshot) });
  const previous = previousDeployments(deployment, earlier);
  // Opened once each: many services usually compare with the same deployment.
  const openedById = new Map([...new Set(previous.values())].map((row) => [row.id, opened(row)] as const));
  return deploymentChanges(opened(deployment), new Map([...previous].map(([serviceId, row]) => [serviceId, openedById.get(row.id)!] as const)));
}
