import { randomUUID } from "node:crypto";
import { eq, getTableColumns, sql } from "drizzle-orm";
import { z } from "zod";
import type { DeploymentStatus } from "../../engine/protocol/events";
import { deploymentAction, gitRef, type Snapshot } from "../../engine/protocol/snapshot";
import { AUDITED, auditValues, auditWith, recordAudit } from "../audit/record-audit";
import type { DomainContext } from "../context";
import { jsonParam, jsonValue, placeholders, preparedOnce, timeParam, timeValue, uuidsParam } from "../db/prepared";
import { deployments, type DeploymentCause } from "../db/schema";
import { AppError } from "../errors";
import { unwrapCipher } from "../secrets/organization-cipher";
import { environmentQueue, leaseColumns } from "./environment-queue";
import { requestDispatch } from "./dispatch-job";
import { ENGINE_CHANNEL, engineNotice } from "./engine-channel";
import { announceDeployment, announcementOf, DEPLOYMENT_CHANNEL } from "./events";
import { lockSnapshotPlace, readSnapshotInputs, renderSnapshot } from "./snapshot";

export const requestDeploymentInput = z.object({
  environmentId: z.string().uuid(),
  action: deploymentAction,
  /** Acts on these services only; all of the environment's when omitted. */
  serviceIds: z.array(z.string().uuid()).min(1).optional(),
  /**
   * Per service id, the git ref to deploy instead of the one its configuration follows: an exact
   * commit (what a push webhook deploys) or another branch. Services not named keep theirs.
   */
  refs: z.record(z.string().uuid(), gitRef).optional(),
  /** Build without the build cache (`--no-cache`): the engine restores none and saves the fresh result. */
  noCache: z.boolean().optional(),
});

type GitRef = z.infer<typeof gitRef>;

/**
 * The one entry point for every trigger (UI, API, CLI, webhook, schedule). In one transaction
 * it writes the deployment with its snapshot, leased to its cluster at once when nothing of the
 * environment runs or waits, else queued (the end of the running one leases the next).
 * A request for the same action as a deployment still waiting in the queue is merged into it
 * (which keeps its own cause). `cause` says why when the actor alone does not (a promotion, a clone).
 */
export async function requestDeployment(ctx: DomainContext, input: z.infer<typeof requestDeploymentInput>, cause?: DeploymentCause) {
  const { organizationId } = ctx.actor;
  // A request is on the path of every dispatch (issue 17): what its snapshot is rendered from is
  // read before its transaction, side by side on the pool's connections; the transaction holds
  // the environment's lock for its writes and for what must be read under it (the queue). The
  // services, their stages and the variables read before the lock rather than under it show the
  // same: none of their writes waits for a request's lock (a stage change takes the lock, but
  // services and stages are read in one statement, which agrees with itself), so the lock never
  // ordered them; a request sees every change committed before it started, and one committed
  // while it runs may or may not be in its deployment, as it always could. The organization is
  // the actor's: the environment is locked only within it, and the reads find nothing of another.
  const inputs = await readSnapshotInputs(ctx.db, organizationId, input.environmentId);

  return ctx.db.transaction(async (tx) => {
    // Serialises requests per environment, so two requests cannot both miss the queued one.
    const place = await lockSnapshotPlace(tx, organizationId, input.environmentId);
    const cipher = await unwrapCipher(ctx.keyring, organizationId, place.wrappedDataKey);
    const { environment } = place;
    const queue = await environmentQueue(tx, environment.id);
    const waiting = queue.find((deployment) => deployment.leasedAt === null && deployment.action === input.action);
    const serviceIds = waiting ? mergeTargets(waiting.serviceIds, input.serviceIds ?? null) : (input.serviceIds ?? null);

    const all = inputs.services;
    const targeted = serviceIds ? all.filter((s) => serviceIds.includes(s.id)) : all;
    if (serviceIds && targeted.length !== serviceIds.length) throw new AppError("NOT_FOUND", "A requested service is not in this environment");
    if (targeted.length === 0 && input.action !== "DELETE")
      throw new AppError("INVALID", `Environment "${environment.name}" has no services to ${input.action.toLowerCase()}`);

    if (input.refs && Object.keys(input.refs).some((id) => !targeted.some((s) => s.id === id))) {
      throw new AppError("INVALID", "A ref is given for a service the deployment does not act on");
    }
    const refs = waiting ? mergeRefs(waiting.snapshot, input.serviceIds ?? null, input.refs ?? {}) : (input.refs ?? {});

    const deploymentId = waiting?.id ?? randomUUID();
    // A merged request keeps the waiting one's noCache: someone asked for a clean build of what it held.
    const noCache = (input.noCache ?? false) || (waiting?.snapshot.noCache ?? false);
    const snapshot = renderSnapshot(cipher, place, inputs, { deploymentId, action: input.action, services: targeted, refs, noCache });

    if (waiting) {
      const [merged] = await tx.update(deployments).set({ serviceIds, snapshot }).where(eq(deployments.id, waiting.id)).returning();
      // The services it now includes show QUEUED from here on.
      await announceDeployment(tx, merged!, 0);
      await recordAudit(tx, ctx.actor, {
        action: "deployment.merge",
        targetType: "deployment",
        targetId: waiting.id,
        changes: { action: input.action, serviceIds, ...(noCache ? { noCache } : {}) },
      });
      return { deployment: merged!, merged: true };
    }

    // Nothing runs or waits: the request leases its deployment itself (issue 17), and its engine
    // hears of it when this commits, with no worker job between the call and the engine.
    const leaseNow = queue.length === 0;
    const leased = leaseNow ? leaseColumns(ctx.now(), ctx.leaseSeconds, 1) : null;
    const row = {
      id: deploymentId,
      organizationId: environment.organizationId,
      environmentId: environment.id,
      clusterId: environment.clusterId,
      status: NEW_STATUS,
    };
    // Every page that shows a status of the environment hears of it at once (not at the engine's
    // first event), and a leased one's engine too, on commit: both sent by the insert itself,
    // which writes the request's audit event too (auditWith).
    const [inserted] = await requestStatements(tx).insert.execute({
      ...row,
      action: input.action,
      serviceIds,
      snapshot,
      origin: ctx.actor.origin,
      actorId: ctx.actor.id ?? null,
      actorLabel: ctx.actor.label,
      cause: jsonValue(cause),
      leasedAt: timeValue(leased?.leasedAt),
      leaseExpiresAt: timeValue(leased?.leaseExpiresAt),
      attempt: leased?.attempt ?? 0,
      announcement: announcementOf(row, 0),
      engineNotice: leaseNow ? engineNotice({ clusterId: row.clusterId, type: "task:available", deploymentId }) : null,
      ...auditValues(
        ctx.actor,
        {
          action: `deployment.${input.action.toLowerCase()}`,
          targetType: "environment",
          targetId: environment.id,
          changes: { deploymentId, serviceIds, ...(noCache ? { noCache } : {}) },
        },
        AUDITED,
      ),
    });
    const { announced: _announced, engineNotified: _engineNotified, ...deployment } = inserted!;
    // Queued behind the running one: the end of that one leases it, in the transaction that
    // records the end, under this lock (events.ts). Queued behind one that waits with nothing
    // running (its dispatch could not happen at the time), the environment's dispatch job leases them.
    if (!leaseNow && queue[0]!.leasedAt === null) await requestDispatch(tx, environment.id);
    return { deployment, merged: false };
  });
}

/** What a new deployment's status is: its engine's first event moves it on. */
const NEW_STATUS: DeploymentStatus = "QUEUED";

/** The insert of every request not merged into a waiting deployment, with its audit and notifications (see preparedOnce). */
const requestStatements = preparedOnce((db) => ({
  insert: db
    .with(auditWith(db))
    .insert(deployments)
    .values({
      ...placeholders(["id", "organizationId", "environmentId", "clusterId", "action", "snapshot", "origin", "actorId", "actorLabel", "attempt", "status"]),
      serviceIds: uuidsParam("serviceIds"),
      cause: jsonParam<DeploymentCause>("cause"),
      leasedAt: timeParam("leasedAt"),
      leaseExpiresAt: timeParam("leaseExpiresAt"),
    })
    .returning({
      ...getTableColumns(deployments),
      announced: sql`pg_notify(${DEPLOYMENT_CHANNEL}, ${sql.placeholder("announcement")})`,
      engineNotified: sql`case when ${sql.placeholder("engineNotice")}::text is not null then pg_notify(${ENGINE_CHANNEL}, ${sql.placeholder("engineNotice")}) end`,
    })
    .prepare("request_deployment"),
}));

/**
 * The refs of a merged deployment: the new request's; for the services it does not act on, the
 * pins the waiting deployment already had (a newer request for a service supersedes its pin).
 */
function mergeRefs(waiting: Snapshot, requested: string[] | null, refs: Record<string, GitRef>): Record<string, GitRef> {
  const merged: Record<string, GitRef> = {};
  for (const service of waiting.services) {
    const superseded = requested === null || requested.includes(service.id);
    // Every kind built from git keeps its pin: a migration JOB pinned by a push must not deploy the branch's head.
    const fromGit = service.kind === "APPLICATION" || service.kind === "JOB";
    const ref = fromGit ? service.config.git.ref : undefined;
    if (!superseded && ref && "commit" in ref) merged[service.id] = ref;
  }
  return { ...merged, ...refs };
}

function mergeTargets(a: string[] | null, b: string[] | null): string[] | null {
  if (!a || !b) return null;
  return [...new Set([...a, ...b])];
}
