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
 * The environment's deployments that hold or wait for its turn: a leased unfinished one sorts
 * first (one is running), then the queued ones, oldest first; the first `limit` of them, or all.
 * Read under the environment's row lock.
 */
export function environmentQueue(tx: Executor, environmentId: string, limit?: number) {
  // LIMIT NULL is no limit.
  return queueStatements(tx).queue.execute({ environmentId, limit: limit ?? null });
}

/** On the path of every request and every end of a deployment (see preparedOnce). */
const queueStatements = preparedOnce((db) => {
  const queue = () =>
    db
      .select()
      .from(deployments)
      .where(
        and(
          eq(deployments.environmentId, sql.placeholder("environmentId")),
          or(
            and(isNotNull(deployments.leasedAt), notInArray(deployments.status, finished)),
            and(eq(deployments.status, "QUEUED"), isNull(deployments.leasedAt)),
          ),
        ),
      )
      .orderBy(sql`${deployments.leasedAt} is null`, asc(deployments.createdAt))
      .$dynamic();
  const locked = environmentRow(db).for("update", { skipLocked: true }).as("locked");
  const head = queue().limit(1).as("head");
  return {
    lock: environmentRow(db).for("update").prepare("lock_environment"),
    queue: queue().limit(sql.placeholder("limit")).prepare("environment_queue"),
    // No row when another transaction holds the lock; one, with a null head when none waits or runs, when this one does.
    tryLockedHead: db
      .select()
      .from(locked)
      .leftJoinLateral(head, sql`true`)
      .prepare("try_lock_environment_queue_head"),
  };
});

function environmentRow(db: Executor) {
  return db
    .select({ one: sql<number>`1`.as("one") })
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
  return leaseHead(tx, svc, next);
}

/**
 * leaseNextDeployment for a caller that may already hold a deployment row of the environment,
 * which must not wait for the environment's lock (a cancel holds that and waits for the
 * deployment's row): the lock is taken only if no other transaction holds it (a transaction
 * never waits for itself, so one that took it before finds it taken), with the queue's head in
 * the same statement. False when another transaction holds it: nothing was read or leased.
 */
export async function tryLeaseNextDeployment(tx: Executor, svc: LeaseClock, environmentId: string): Promise<boolean> {
  const [locked] = await queueStatements(tx).tryLockedHead.execute({ environmentId });
  if (!locked) return false;
  await leaseHead(tx, svc, locked.head ?? undefined);
  return true;
}

async function leaseHead(tx: Executor, svc: LeaseClock, next: typeof deployments.$inferSelect | undefined) {
  if (!next || next.leasedAt !== null) return null;
  const [leased] = await tx
    .update(deployments)
    .set(leaseColumns(svc.now(), svc.leaseSeconds, next.attempt + 1))
    .where(eq(deployments.id, next.id))
    .returning();
  await notifyEngine(tx, { clusterId: next.clusterId, type: "task:available", deploymentId: next.id });
  return leased!;
}
