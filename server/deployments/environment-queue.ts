import { and, asc, eq, isNotNull, isNull, notInArray, or, sql } from "drizzle-orm";
import { terminalStatuses } from "../../engine/protocol/events";
import type { Services } from "../context";
import type { Executor } from "../db/client";
import { preparedOnce } from "../db/prepared";
import { deployments, environments } from "../db/schema";
import { notifyEngine } from "./engine-channel";

/**
 * An environment runs one deployment at a time; the others wait in its queue. Everything that
 * reads or changes the queue (a request, a dispatch, a cancel, a rollback, the end of a
 * deployment) does it holding the environment's row lock, taken before any deployment row of
 * the environment: one order, so that no two of them wait for each other.
 */

const finished = [...terminalStatuses];

/** What a lease needs of the services: the clock, and how long the engine has to acknowledge it. */
export type LeaseClock = Pick<Services, "now" | "leaseSeconds">;

/** Takes the environment's row lock for the transaction, waiting for its holder. */
export async function lockEnvironment(tx: Executor, environmentId: string): Promise<void> {
  await queueStatements(tx).lock.execute({ environmentId });
}

/**
 * Takes the environment's row lock unless another transaction holds it, without waiting: true
 * when the transaction holds it (taken now, or earlier: a transaction never waits for itself).
 * For a caller that may already hold a deployment row of the environment, which must not wait
 * for the environment's lock (a cancel holds that and waits for the deployment's row).
 */
export async function tryLockEnvironment(tx: Executor, environmentId: string): Promise<boolean> {
  const locked = await queueStatements(tx).tryLock.execute({ environmentId });
  return locked.length > 0;
}

/**
 * The environment's deployments that hold or wait for its turn: a leased unfinished one sorts
 * first (one is running), then the queued ones, oldest first; the first `limit` of them, or all.
 * Read under the environment's row lock.
 */
export function environmentQueue(tx: Executor, environmentId: string, limit?: number) {
  // LIMIT NULL is no limit.
  return queueStatements(tx).queue.execute({ environmentId, limit: limit ?? null });
}

/** On the path of every request and every end of a deployment (see preparedOnce). */
const queueStatements = preparedOnce((db) => ({
  lock: environmentRow(db).for("update").prepare("lock_environment"),
  tryLock: environmentRow(db).for("update", { skipLocked: true }).prepare("try_lock_environment"),
  queue: db
    .select()
    .from(deployments)
    .where(
      and(
        eq(deployments.environmentId, sql.placeholder("environmentId")),
        or(and(isNotNull(deployments.leasedAt), notInArray(deployments.status, finished)), and(eq(deployments.status, "QUEUED"), isNull(deployments.leasedAt))),
      ),
    )
    .orderBy(sql`${deployments.leasedAt} is null`, asc(deployments.createdAt))
    .limit(sql.placeholder("limit"))
    .prepare("environment_queue"),
}));

function environmentRow(db: Executor) {
  return db
    .select({ one: sql`1` })
    .from(environments)
    .where(eq(environments.id, sql.placeholder("environmentId")))
    .$dynamic();
}

/** The columns of a new lease: its attempt, and the time the engine has to acknowledge it. */
export function leaseColumns(leasedAt: Date, leaseSeconds: number, attempt: number) {
  return { leasedAt, leaseExpiresAt: new Date(leasedAt.getTime() + leaseSeconds * 1000), attempt, acknowledgedAt: null };
}

/**
 * Leases the environment's oldest queued deployment unless one is running, in the caller's
 * transaction, which holds the environment's row lock. The engine hears of it when that commits.
 * Null when one is running or none waits.
 */
export async function leaseNextDeployment(tx: Executor, svc: LeaseClock, environmentId: string) {
  // One query (it is on the path of every dispatch): its first row is the running one, or the oldest queued.
  const [next] = await environmentQueue(tx, environmentId, 1);
  if (!next || next.leasedAt !== null) return null;
  const [leased] = await tx
    .update(deployments)
    .set(leaseColumns(svc.now(), svc.leaseSeconds, next.attempt + 1))
    .where(eq(deployments.id, next.id))
    .returning();
  await notifyEngine(tx, { clusterId: next.clusterId, type: "task:available", deploymentId: next.id });
  return leased!;
}
