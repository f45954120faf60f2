import { and, eq, isNotNull, isNull, lt, notInArray, sql } from "drizzle-orm";
import { terminalStatuses } from "../../engine/protocol/events";
import type { Services } from "../context";
import { deployments } from "../db/schema";
import { requestDispatch } from "./dispatch-job";
import { notifyEngine } from "./engine-channel";
import { leaseColumns, leaseNextDeployment, lockEnvironment } from "./environment-queue";
import { appendControlEvent } from "./events";

const finished = [...terminalStatuses];
/** How many times a deployment is handed out before an unresponsive cluster fails it. */
export const MAX_DISPATCH_ATTEMPTS = 3;

/**
 * Leases the environment's oldest queued deployment to its cluster, unless one of the
 * environment's deployments is already leased and running: one deployment per environment at a
 * time. The environment's dispatch job runs it: the end of a deployment leases the next one
 * itself (events.ts), so the job is left for a dispatch that could not happen then, and for the
 * sweep of queues left waiting (redispatchStaleQueues).
 */
export async function dispatchEnvironment(svc: Services, environmentId: string) {
  return svc.db.transaction(async (tx) => {
    await lockEnvironment(tx, environmentId);
    return leaseNextDeployment(tx, svc, environmentId);
  });
}

/** Why deployments are handed out again, in the words of their events. */
type LostLease = {
  /** Whether the deployment (read under its row lock) is still lost: it may have moved on since it was selected. */
  stillLost: (deployment: typeof deployments.$inferSelect, at: Date) => boolean;
  handedOutAgain: (nextAttempt: number) => string;
  gaveUp: (attempts: number) => string;
  canceled: string;
};

/**
 * Deployments whose engine went silent (no heartbeat or event before the lease expired) are
 * handed out again, up to MAX_DISPATCH_ATTEMPTS, then failed with the reason. Never left
 * running forever. Re-delivery is harmless: the engine keys its work by deployment id.
 */
export async function reconcileLeases(svc: Services) {
  const expired = await svc.db
    .select({ id: deployments.id, environmentId: deployments.environmentId })
    .from(deployments)
    .where(and(lt(deployments.leaseExpiresAt, svc.now()), notInArray(deployments.status, finished)));
  return handOutAgain(svc, expired, {
    stillLost: (deployment, at) => deployment.leaseExpiresAt !== null && deployment.leaseExpiresAt < at,
    handedOutAgain: (attempt) => `no word from the engine for ${svc.leaseSeconds}s: handed out again (attempt ${attempt})`,
    gaveUp: (attempts) => `the engine of the cluster stopped responding: lease expired ${attempts} times`,
    canceled: "canceled: the engine stopped responding",
  });
}

/**
 * The engine of the cluster came back as a new process (another boot id): what the previous one
 * acknowledged and had not finished died with it, so it is handed out again now rather than once
 * its lease runs out (issue 12). Leased deployments it never acknowledged need nothing: the new
 * engine pulls them.
 */
export async function redispatchAfterEngineRestart(svc: Services, clusterId: string) {
  const held = await svc.db
    .select({ id: deployments.id, environmentId: deployments.environmentId })
    .from(deployments)
    .where(and(eq(deployments.clusterId, clusterId), isNotNull(deployments.acknowledgedAt), notInArray(deployments.status, finished)));
  return handOutAgain(svc, held, {
    stillLost: (deployment) => deployment.clusterId === clusterId && deployment.acknowledgedAt !== null,
    handedOutAgain: (attempt) => `the engine restarted while it ran this deployment: handed out again (attempt ${attempt})`,
    gaveUp: (attempts) => `the engine of the cluster restarted during each of ${attempts} attempts`,
    canceled: "canceled: the engine restarted",
  });
}

/** Leases each deployment again (a new attempt, notified to its engine), or fails it once it had its attempts. */
async function handOutAgain(svc: Services, candidates: { id: string; environmentId: string }[], lost: LostLease) {
  const outcomes: { deploymentId: string; outcome: "redispatched" | "failed" }[] = [];
  for (const { id, environmentId } of candidates) {
    const outcome = await svc.db.transaction(async (tx) => {
      // The environment's lock before the deployment's row, as a cancel takes them: failing it
      // ends it, and its end leases the environment's next deployment under that lock (events.ts).
      await lockEnvironment(tx, environmentId);
      const [deployment] = await tx.select().from(deployments).where(eq(deployments.id, id)).for("update");
      const at = svc.now();
      if (!deployment || terminalStatuses.has(deployment.status) || !lost.stillLost(deployment, at)) return null;
      if (deployment.attempt >= MAX_DISPATCH_ATTEMPTS || deployment.cancelRequestedAt) {
        await appendControlEvent(tx, svc, deployment, {
          step: "deployment",
          status: deployment.cancelRequestedAt ? "canceled" : "failed",
          message: deployment.cancelRequestedAt ? lost.canceled : lost.gaveUp(deployment.attempt),
          at,
        });
        return "failed" as const;
      }
      await tx
        .update(deployments)
        .set(leaseColumns(at, svc.leaseSeconds, deployment.attempt + 1))
        .where(eq(deployments.id, deployment.id));
      await appendControlEvent(tx, svc, deployment, { step: "lease", status: "expired", message: lost.handedOutAgain(deployment.attempt + 1), at });
      await notifyEngine(tx, { clusterId: deployment.clusterId, type: "task:available", deploymentId: deployment.id });
      return "redispatched" as const;
    });
    if (outcome) outcomes.push({ deploymentId: id, outcome });
  }
  return outcomes;
}

/** How long a deployment may wait in the queue, with nothing running before it, until the sweep dispatches it. */
export const STALE_QUEUE_MS = 10_000;

/**
 * Deployments left waiting with nothing running before them: the end before them could not
 * lease them (another transaction held the environment's lock, events.ts) and their dispatch job
 * failed while the database was down and now waits out graphile-worker's retry backoff (minutes
 * after a few failures), or was lost with its worker. Each such environment's dispatch job is requested
 * again, to run now (its job key replaces the waiting one). Run beside the lease reconciler.
 */
export async function redispatchStaleQueues({ db }: Services): Promise<string[]> {
  const running = db
    .select({ environmentId: deployments.environmentId })
    .from(deployments)
    .where(and(isNotNull(deployments.leasedAt), notInArray(deployments.status, finished)));
  const stale = await db
    .selectDistinct({ environmentId: deployments.environmentId })
    .from(deployments)
    .where(
      and(
        eq(deployments.status, "QUEUED"),
        isNull(deployments.leasedAt),
        // The database's clock, which stamped created_at.
        lt(deployments.createdAt, sql`now() - make_interval(secs => ${STALE_QUEUE_MS / 1000})`),
        notInArray(deployments.environmentId, running),
      ),
    );
  for (const { environmentId } of stale) await requestDispatch(db, environmentId);
  return stale.map(({ environmentId }) => environmentId);
}
