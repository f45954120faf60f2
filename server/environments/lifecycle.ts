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

/**
 * Starts and stops environments at their schedule's boundaries crossed since the last check,
 * as deployments with origin SCHEDULER. Each environment's checkpoint advances in the same
 * transaction that locks it, so two workers never act on the same boundary twice.
 */
export async function applySchedules(services: Services) {
  const now = services.now();
  const scheduled = await services.db.select({ id: environments.id }).from(environments).where(isNotNull(environments.schedule));
  const applied: { environmentId: string; action: "DEPLOY" | "STOP" }[] = [];
  for (const { id } of scheduled) {
    const boundary = await services.db.transaction(async (tx) => {
      const [environment] = await tx.select().from(environments).where(eq(environments.id, id)).for("update", { skipLocked: true });
      if (!environment?.schedule) return null;
      const from = environment.scheduleCheckedAt ?? environment.createdAt;
      await tx.update(environments).set({ scheduleCheckedAt: now }).where(eq(environments.id, id));
      const crossed = latestBoundary(environment.schedule, from, now);
      return crossed ? { environment, action: crossed.action } : null;
    });
    if (!boundary) continue;
    try {
      await requestDeployment({ ...services, actor: scheduler(boundary.environment.organizationId) }, { environmentId: id, action: boundary.action });
      applied.push({ environmentId: id, action: boundary.action });
    } catch (error) {
      // An environment without services has nothing to start or stop.
      if (!(error instanceof AppError && error.code === "INVALID")) throw error;
    }
  }
  return applied;
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
      const error = await recordReapFailure(services, candidate, cause);
      failed.push({ ...candidate, error, cause });
    }
  }
  return { dryRun: false, environments: reaped, failed, leftovers };
}

const REAP_FAILED = "environment.reap_failed";

/**
 * Says in the organization's audit log why its expired environment was not deleted, once per
 * reason (the reaper retries every minute). An AppError's message is meant for users; anything
 * else may hold internals and is said only as such (the caller has the cause, to log).
 */
async function recordReapFailure(services: Services, candidate: ReapCandidate, cause: unknown): Promise<string> {
  const error = cause instanceof AppError ? cause.message : "an internal error";
  const [last] = await services.db
    .select({ changes: auditEvents.changes })
    .from(auditEvents)
    .where(
      and(eq(auditEvents.organizationId, candidate.organizationId), eq(auditEvents.action, REAP_FAILED), eq(auditEvents.targetId, candidate.environmentId)),
    )
    .orderBy(desc(auditEvents.id))
    .limit(1);
  if (last?.changes?.error !== error) {
    await recordAudit(services.db, scheduler(candidate.organizationId), {
      action: REAP_FAILED,
      targetType: "environment",
      targetId: candidate.environmentId,
      changes: { project: candidate.project, name: candidate.name, expiredAt: candidate.expiredAt, error },
    });
  }
  return error;
}
