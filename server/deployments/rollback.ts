import { randomUUID } from "node:crypto";
import { and, desc, eq } from "drizzle-orm";
import { z } from "zod";
import type { Snapshot } from "../../engine/protocol/snapshot";
import { recordAudit } from "../audit/record-audit";
import type { DomainContext } from "../context";
import { clusters, deployments, services } from "../db/schema";
import { getEnvironment } from "../environments/environments";
import { AppError, notFound } from "../errors";
import { isLocalRepository, localRepositoryRefused } from "../git/local-repositories";
import { cipherFor } from "../secrets/organization-cipher";
import { leaseNextDeployment, lockEnvironment } from "./environment-queue";
import { resealSnapshot } from "./snapshot";

export const rollbackInput = z.object({
  environmentId: z.string().uuid(),
  /** The earlier deployment to redeploy as it was; by default the last successful DEPLOY before the environment's latest one. */
  to: z.string().uuid().optional(),
  /** Rolls back these services only (each must be in that deployment); all of its services when omitted. */
  serviceIds: z.array(z.string().uuid()).min(1).optional(),
});

/**
 * Redeploys an earlier successful deployment as it was: the same configuration and variables (its
 * snapshot, sealed again for the new deployment) and the same commit of every service built from
 * git (pinned from what its clone step resolved). A new deployment in the history, marked
 * `rollbackOf`, so the history keeps what happened; services deleted since cannot come back.
 */
export async function rollbackDeployment(ctx: DomainContext, input: z.infer<typeof rollbackInput>) {
  const environment = await getEnvironment(ctx, input.environmentId);
  const cipher = await cipherFor(ctx.db, ctx.keyring, environment.organizationId);
  return ctx.db.transaction(async (tx) => {
    await lockEnvironment(tx, environment.id);
    const target = input.to ? await deploymentOf(tx, environment.id, input.to) : await previousSuccess(tx, environment.id);
    if (target.status !== "DEPLOYED" || target.action !== "DEPLOY")
      throw new AppError("INVALID", `Deployment ${target.id} is ${target.status} (${target.action}): only a successful DEPLOY can be rolled back to`);

    const wanted = input.serviceIds ?? target.snapshot.services.map((service) => service.id);
    const chosen = target.snapshot.services.filter((service) => wanted.includes(service.id));
    if (chosen.length !== wanted.length) throw new AppError("NOT_FOUND", `A service to roll back is not in deployment ${target.id}`);
    const existing = new Set((await tx.select({ id: services.id }).from(services).where(eq(services.environmentId, environment.id))).map((row) => row.id));
    const gone = chosen.filter((service) => !existing.has(service.id)).map((service) => service.name);
    if (gone.length > 0) throw new AppError("INVALID", `Cannot roll back ${gone.join(", ")}: deleted since deployment ${target.id}`);

    const [cluster] = await tx.select().from(clusters).where(eq(clusters.id, environment.clusterId));
    const deploymentId = randomUUID();
    // A rollback builds as deployments do: the target's --no-cache was asked for once, for it.
    const resealed = resealSnapshot(cipher, target.id, deploymentId, { ...target.snapshot, services: chosen, noCache: undefined });
    const snapshot: Snapshot = { ...resealed, services: resealed.services.map((service) => pinCommit(service, target.commits[service.id], cluster!)) };

    const [created] = await tx
      .insert(deployments)
      .values({
        id: deploymentId,
        organizationId: environment.organizationId,
        environmentId: environment.id,
        clusterId: environment.clusterId,
        action: "DEPLOY",
        serviceIds: chosen.map((service) => service.id),
        snapshot,
        rollbackOf: target.id,
        origin: ctx.actor.origin,
        actorId: ctx.actor.id,
        actorLabel: ctx.actor.label,
      })
      .returning();
    // The environment's next deployment is leased now unless one runs; then that one's end leases it (events.ts).
    await leaseNextDeployment(tx, ctx, environment.id);
    await recordAudit(tx, ctx.actor, {
      action: "deployment.rollback",
      targetType: "environment",
      targetId: environment.id,
      changes: { deploymentId, rollbackOf: target.id, serviceIds: chosen.map((service) => service.id) },
    });
    return created!;
  });
}

type Tx = Parameters<Parameters<DomainContext["db"]["transaction"]>[0]>[0];

async function deploymentOf(tx: Tx, environmentId: string, deploymentId: string) {
  const [row] = await tx
    .select()
    .from(deployments)
    .where(and(eq(deployments.id, deploymentId), eq(deployments.environmentId, environmentId)));
  if (!row) throw notFound("Deployment");
  return row;
}

/**
 * What ran before the current release: the latest successful DEPLOY before the environment's
 * latest one that deployed other commits (a redeploy of the same commits is not a step back),
 * else the one just before it (a change of configuration only).
 */
async function previousSuccess(tx: Tx, environmentId: string) {
  const successes = await tx
    .select()
    .from(deployments)
    .where(and(eq(deployments.environmentId, environmentId), eq(deployments.action, "DEPLOY"), eq(deployments.status, "DEPLOYED")))
    .orderBy(desc(deployments.createdAt))
    .limit(50);
  const [latest, ...earlier] = successes;
  if (!latest || earlier.length === 0)
    throw new AppError("INVALID", "Nothing to roll back to: the environment has no successful deployment before its latest one");
  const sameCommits = (other: typeof latest) => Object.entries(other.commits).every(([serviceId, commit]) => latest.commits[serviceId] === commit);
  return earlier.find((other) => !sameCommits(other)) ?? earlier[0]!;
}

/** A service built from git deploys the commit the earlier deployment resolved, not its branch's head now. */
function pinCommit(service: Snapshot["services"][number], commit: string | undefined, cluster: typeof clusters.$inferSelect): Snapshot["services"][number] {
  if (service.kind !== "APPLICATION" && service.kind !== "JOB") return service;
  // Checked at every deployment: an ADMIN may have disallowed local repositories since.
  if (isLocalRepository(service.config.git.url) && !cluster.allowLocalRepositories) throw localRepositoryRefused(cluster.name, service.config.git.url);
  if (!commit) return service;
  return { ...service, config: { ...service.config, git: { ...service.config.git, ref: { commit } } } } as typeof service;
}
