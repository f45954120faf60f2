import { and, desc, eq, isNotNull, lte, sql } from "drizzle-orm";
import type { Actor } from "../auth/actor";
import type { Services } from "../context";
import { reapLeftovers } from "../engines/leftovers";
import { recordAudit } from "../audit/record-audit";
import { auditEvents, environments, projects } from "../db/schema";
import { requestDeployment } from "../deployments/request-deployment";
import { AppError } from "../errors";
import { previewReaped } from "../webhooks/previews";
import { latestBoundary } from "./schedule";

/** Slipway acting on its own, on behalf of an organization: recorded as the scheduler. */
function scheduler(organizationId: string): Actor {
  return { type: "system", id: null, label: "scheduler", organizationId, role: "OWNER", origin: "SCHEDULER" };
}

/** An environment whose scheduled start or stop could not be requested this minute, and why (said to its organization). */
export type ScheduleFailure = { environmentId: string; error: string; cause: unknown };

/**
 * Starts and stops environments at their schedule's boundaries crossed since the last check,
 * as deployments with origin SCHEDULER. An environment's checkpoint moves only once its
 * deployment is requested: a worker that dies in between, or a request that fails (a database
 * error, a key that does not open), leaves the boundary to the next minute's run. A
 * transaction-scoped advisory lock per environment keeps two workers off the same boundary.
 * Each environment is handled on its own: one that fails is returned in `failed` and recorded in
 * its organization's audit log, and the others go on.
 */
export async function applySchedules(services: Services) {
  const now = services.now();
  const scheduled = await services.db
    .select({ id: environments.id, organizationId: environments.organizationId })
    .from(environments)
    .where(isNotNull(environments.schedule));
  const applied: { environmentId: string; action: "DEPLOY" | "STOP" }[] = [];
  const failed: ScheduleFailure[] = [];
  for (const { id, organizationId } of scheduled) {
    try {
      const action = await services.db.transaction(async (tx) => {
        const { rows } = await tx.execute<{ locked: boolean }>(sql`select pg_try_advisory_xact_lock(hashtext(${`slipway:schedule:${id}`})) as locked`);
        if (!rows[0]?.locked) return null;
        const [environment] = await tx.select().from(environments).where(eq(environments.id, id));
        if (!environment?.schedule) return null;
        const crossed = latestBoundary(environment.schedule, environment.scheduleCheckedAt ?? environment.createdAt, now);
        // requestDeployment commits on a connection of its own (it takes the pool, not this
        // transaction), before the checkpoint below: a crash between the two repeats the
        // request next minute (merged into the deployment still waiting) rather than losing it.
        const requested = crossed ? await requestBoundary(services, environment.organizationId, id, crossed.action) : false;
        await tx.update(environments).set({ scheduleCheckedAt: now }).where(eq(environments.id, id));
        return requested ? crossed!.action : null;
      });
      if (action) applied.push({ environmentId: id, action });
    } catch (cause) {
      // Its checkpoint did not move: the next minute's run tries the same boundary again.
      const error = await recordFailureOnce(services, { action: "environment.schedule_failed", organizationId, environmentId: id }, cause).catch(() =>
        describeFailure(cause),
      );
      failed.push({ environmentId: id, error, cause });
    }
  }
  return { applied, failed };
}

/** An AppError's message is meant for users; anything else may hold internals and is said only as such. */
const describeFailure = (cause: unknown) => (cause instanceof AppError ? cause.message : "an internal error");

/**
 * Says in the organization's audit log why the scheduler could not act on its environment
 * (`environment.schedule_failed`, `environment.reap_failed`), once per reason: it retries every
 * minute. Returns the reason as said. Recording it may fail too (the database being what
 * failed): the caller then has only the cause, to log.
 */
async function recordFailureOnce(
  services: Services,
  failure: { action: string; organizationId: string; environmentId: string; changes?: Record<string, unknown> },
  cause: unknown,
): Promise<string> {
  const error = describeFailure(cause);
  const [last] = await services.db
    .select({ changes: auditEvents.changes })
    .from(auditEvents)
    .where(and(eq(auditEvents.organizationId, failure.organizationId), eq(auditEvents.action, failure.action), eq(auditEvents.targetId, failure.environmentId)))
    .orderBy(desc(auditEvents.id))
    .limit(1);
  if (last?.changes?.error !== error) {
    await recordAudit(services.db, scheduler(failure.organizationId), {
      action: failure.action,
      targetType: "environment",
      targetId: failure.environmentId,
      changes: { ...failure.changes, error },
    });
  }
  return error;
}

/** Requests the start or stop; false when there is nothing to act on (an environment without services). */
async function requestBoundary(services: Services, organizationId: string, environmentId: string, action: "DEPLOY" | "STOP") {
  try {
    await requestDeployment({ ...services, actor: scheduler(organizationId) }, { environmentId, action });
    return true;
  } catch (error) {
    if (error instanceof AppError && error.code === "INVALID") return false;
    throw error;
  }
}

export type ReapCandidate = { environmentId: string; name: string; project: string; organizationId: string; expiredAt: string };

/** Expired environments that are not protected, oldest expiry first. */
export async function expiredEnvironments(services: Services, organizationId?: string): Promise<ReapCandidate[]> {
  const rows = await services.db
    .select({ environment: environments, project: projects.name })
    .from(environments)
    .innerJoin(projects, eq(projects.id, environments.projectId))
    .where(
      and(
        lte(environments.expiresAt, services.now()),
        eq(environments.protected, false),
        organizationId ? eq(environments.organizationId, organizationId) : sql`true`,
      ),
    )
    .orderBy(environments.expiresAt);
  return rows.map(({ environment, project }) => ({
    environmentId: environment.id,
    name: environment.name,
    project,
    organizationId: environment.organizationId,
    expiredAt: environment.expiresAt!.toISOString(),
  }));
}

/** An expired environment whose DELETE could not be requested, and why (said to its organization). */
export type ReapFailure = ReapCandidate & { error: string; cause: unknown };

/**
 * Deletes expired environments through ordinary DELETE deployments (so their apps are stopped
 * and their files removed by the engine); protected ones are kept. A dry run only reports.
 * Each environment is reaped on its own: one that cannot be (a secret that no longer decrypts,
 * say) is returned in `failed` and recorded in its organization's audit log, and the others
 * are reaped regardless; the next run tries it again.
 */
export async function reapExpiredEnvironments(services: Services, options: { dryRun: boolean; organizationId?: string }) {
  const candidates = await expiredEnvironments(services, options.organizationId);
  // Files engines keep of services that no longer exist go too (engines remove them when asked).
  const leftovers = await reapLeftovers(services, options);
  if (options.dryRun) return { dryRun: true, environments: candidates, failed: [] as ReapFailure[], leftovers };
  const reaped: ReapCandidate[] = [];
  const failed: ReapFailure[] = [];
  for (const candidate of candidates) {
    try {
      // A DELETE already waiting is merged into, so a reaper running every minute queues one.
      await requestDeployment({ ...services, actor: scheduler(candidate.organizationId) }, { environmentId: candidate.environmentId, action: "DELETE" });
      await previewReaped(services, { id: candidate.environmentId, name: candidate.name });
      reaped.push(candidate);
    } catch (cause) {
      // The reaper runs for every organization: an environment it cannot delete must not keep
      // the ones that expire after it (in any organization) alive.
      const { project, name, expiredAt } = candidate;
      const error = await recordFailureOnce(
        services,
        {
          action: "environment.reap_failed",
          organizationId: candidate.organizationId,
          environmentId: candidate.environmentId,
          changes: { project, name, expiredAt },
        },
        cause,
      ).catch(() => describeFailure(cause));
      failed.push({ ...candidate, error, cause });
    }
  }
  return { dryRun: false, environments: reaped, failed, leftovers };
}
