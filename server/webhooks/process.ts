import { and, asc, eq, isNotNull, lt, notInArray, sql } from "drizzle-orm";
import type { Services } from "../context";
import { pgCode } from "../db/errors";
import { gitConnections, webhookDeliveries } from "../db/schema";
import { requestDeployment } from "../deployments/request-deployment";
import { isAppError } from "../errors";
import { repositoryKey } from "../git/repository-url";
import type { Logger } from "../logger";
import { loadCandidates, type Candidate } from "./candidates";
import { connectionApiToken } from "./connections";
import { onPullRequest, webhookActor, type PreviewOutcome } from "./previews";
import { branchPushes, isOlderPush, lastDeployedPush, recordPush, type BranchKey } from "./push-order";
import { actsOn, changedFilesBetween, gitEvents, hasApi, PayloadError, repositoryUrlsOf, type PushEvent } from "./providers";
import { hasPathFilters, pathsAllow, skipsDeploy, triggersOf } from "./triggers";
import { UNFOLLOWED_REASON } from "./followed-repositories";

type DeliveryRow = typeof webhookDeliveries.$inferSelect;
type ConnectionRow = typeof gitConnections.$inferSelect;

export type PushOutcome = {
  ref: string;
  commit: string;
  /** As the payload gave it; what the branch's next pushes are ordered against is recorded in webhook_pushes (push-order.ts). */
  before: string | null;
  pushedAt: string | null;
  /** Why path filters could not be applied (every filtered service was deployed). */
  changedFilesUnknown?: string;
  deployments: { environmentId: string; deploymentId: string; serviceIds: string[]; merged: boolean }[];
  skipped: { serviceId: string; reason: string }[];
  reason?: string;
};

type Result = { status: "PROCESSED" | "IGNORED" | "FAILED"; outcome: Record<string, unknown> | null; error: string | null; acted: boolean };

/** A delivery that failed for an unexpected reason (the database, say) is tried this many times, then marked FAILED. */
const MAX_ATTEMPTS = 3;

/**
 * The most payload bytes one batch reads, besides its count: payloads go up to 25 MiB (the
 * intake's MAX_DELIVERY_BYTES, GitHub's cap), so 200 of them could be 5 GiB in one result. A batch
 * stops before the delivery that would take it past this, except its first: a delivery larger
 * than the budget is read alone. What a batch holds is thus under BATCH_BYTES + 25 MiB.
 */
export const BATCH_BYTES = 32 * 1024 * 1024;

/**
 * The process_webhooks task's work: every PENDING delivery, oldest first, until none is left.
 * Deliveries that changed nothing are marked in bulk; one that requested deployments is marked
 * at once, so a crash after it does not deploy it twice (a repeat would be merged anyway).
 */
export async function processPendingDeliveries(
  services: Services,
  options: { logger?: Logger; batchSize?: number; batchBytes?: number } = {},
): Promise<number> {
  const batchSize = options.batchSize ?? 200;
  const batchBytes = options.batchBytes ?? BATCH_BYTES;
  const candidates = new Map<string, Promise<Candidate[]>>();
  const candidatesOf = (organizationId: string) => {
    let loaded = candidates.get(organizationId);
    if (!loaded) candidates.set(organizationId, (loaded = loadCandidates(services.db, organizationId)));
    return loaded;
  };
  let total = 0;
  for (;;) {
    // Under a steady stream, deliveries keep arriving while this runs: those of repositories no
    // service follows are settled in bulk on every pass, never read back one by one.
    total += await settleUnfollowed(services, candidatesOf);
    const rows = await readBatch(services, batchSize, batchBytes);
    if (rows.length === 0) return total;
    const quiet: { id: string; result: Result }[] = [];
    for (const { delivery, connection } of rows) {
      let result: Result;
      try {
        result = await processDelivery(services, delivery, connection, () => candidatesOf(connection.organizationId));
      } catch (error) {
        if (!isAppError(error) && delivery.attempts + 1 < MAX_ATTEMPTS) {
          await markDeliveries(services, quiet);
          await services.db
            .update(webhookDeliveries)
            .set({ attempts: delivery.attempts + 1 })
            .where(eq(webhookDeliveries.id, delivery.id));
          throw error;
        }
        options.logger?.warn({ err: error, deliveryId: delivery.id }, "webhook delivery failed");
        result = { status: "FAILED", outcome: null, error: error instanceof Error ? error.message : String(error), acted: false };
      }
      if (result.acted) {
        await markDeliveries(services, [...quiet.splice(0), { id: delivery.id, result }]);
        // Previews and deployments were created: the next delivery sees them.
        candidates.delete(connection.organizationId);
      } else {
        quiet.push({ id: delivery.id, result });
      }
    }
    await markDeliveries(services, quiet);
    total += rows.length;
  }
}

/**
 * The next pending deliveries in order, with their connections: at most `count`, and no more
 * payload bytes than `bytes` (the first always, however large). One statement: the running total
 * of the payloads' sizes is counted in PostgreSQL from their stored lengths (octet_length reads a
 * toasted value's size from its header, without fetching it), and only the payloads of the rows
 * kept are sent.
 */
async function readBatch(services: Services, count: number, bytes: number) {
  const size = sql<number>`octet_length(${webhookDeliveries.payload})`;
  const pending = services.db.$with("pending").as(
    services.db
      .select({
        id: webhookDeliveries.id,
        seq: webhookDeliveries.seq,
        // What the deliveries before this one in the batch hold: 0 for the first.
        bytesBefore: sql<number>`sum(${size}) over (order by ${webhookDeliveries.seq} rows between unbounded preceding and current row) - ${size}`.as(
          "bytes_before",
        ),
      })
      .from(webhookDeliveries)
      .where(eq(webhookDeliveries.status, "PENDING"))
      .orderBy(asc(webhookDeliveries.seq))
      .limit(count),
  );
  return services.db
    .with(pending)
    .select({ delivery: webhookDeliveries, connection: gitConnections })
    .from(pending)
    .innerJoin(webhookDeliveries, eq(webhookDeliveries.id, pending.id))
    .innerJoin(gitConnections, eq(gitConnections.id, webhookDeliveries.connectionId))
    .where(lt(pending.bytesBefore, bytes))
    .orderBy(asc(pending.seq));
}

/**
 * Settles, in one statement per organization, the pending deliveries that name a repository no
 * service of their organization follows: most of what an organization-wide connection receives.
 * Their payloads are not even read. Order does not matter for them: they change nothing.
 */
async function settleUnfollowed(services: Services, candidatesOf: (organizationId: string) => Promise<Candidate[]>): Promise<number> {
  const organizations = await services.db
    .selectDistinct({ id: webhookDeliveries.organizationId })
    .from(webhookDeliveries)
    .where(and(eq(webhookDeliveries.status, "PENDING"), isNotNull(webhookDeliveries.repository)));
  let settled = 0;
  for (const { id } of organizations) {
    const followed = [...new Set((await candidatesOf(id)).map((c) => c.repository).filter((r): r is string => r !== null))];
    const rows = await services.db
      .update(webhookDeliveries)
      .set({
        status: "PROCESSED",
        outcome: sql`jsonb_build_object('reason', ${UNFOLLOWED_REASON}::text, 'repository', ${webhookDeliveries.repository})`,
        processedAt: sql`now()`,
        attempts: sql`${webhookDeliveries.attempts} + 1`,
      })
      .where(
        and(
          eq(webhookDeliveries.status, "PENDING"),
          eq(webhookDeliveries.organizationId, id),
          isNotNull(webhookDeliveries.repository),
          followed.length > 0 ? notInArray(webhookDeliveries.repository, followed) : undefined,
        ),
      )
      .returning({ id: webhookDeliveries.id });
    settled += rows.length;
  }
  return settled;
}

/**
 * Stores the deliveries' results, in one statement. A result PostgreSQL refuses (a data
 * exception: a NUL in the ref of a delivery stored before the intake refused them, say) fails
 * that statement for every delivery in it, on every retry of the job: the deliveries are then
 * marked one by one, and one whose result cannot be stored is marked FAILED with the reason, so
 * it is not processed again (nor its deployments requested again) and the others go on.
 */
async function markDeliveries(services: Services, marked: { id: string; result: Result }[]) {
  if (marked.length === 0) return;
  try {
    return await writeResults(services, marked);
  } catch (error) {
    if (!isDataException(error)) throw error;
  }
  for (const one of marked) {
    try {
      await writeResults(services, [one]);
    } catch (error) {
      if (!isDataException(error)) throw error;
      const reason = `Its result could not be stored: ${error instanceof Error ? error.message : String(error)}`;
      await writeResults(services, [
        { id: one.id, result: { status: "FAILED", outcome: null, error: reason.replaceAll("\u0000", ""), acted: one.result.acted } },
      ]);
    }
  }
}

/** Whether PostgreSQL refused a value (SQLSTATE class 22). */
function isDataException(error: unknown): boolean {
  return pgCode(error)?.startsWith("22") ?? false;
}

async function writeResults(services: Services, marked: { id: string; result: Result }[]) {
  await services.db.execute(sql`
    update ${webhookDeliveries} as d
    set status = m.status::webhook_delivery_status, outcome = m.outcome::jsonb, error = m.error, processed_at = now(), attempts = d.attempts + 1
    from unnest(
      ${sql.param(marked.map((m) => m.id))}::uuid[],
      ${sql.param(marked.map((m) => m.result.status))}::text[],
      ${sql.param(marked.map((m) => (m.result.outcome ? JSON.stringify(m.result.outcome) : null)))}::text[],
      ${sql.param(marked.map((m) => m.result.error))}::text[]
    ) as m(id, status, outcome, error)
    where d.id = m.id`);
}

export async function processDelivery(
  services: Services,
  delivery: DeliveryRow,
  connection: ConnectionRow,
  candidates: () => Promise<Candidate[]>,
): Promise<Result> {
  let payload: unknown;
  try {
    payload = JSON.parse(delivery.payload);
  } catch {
    return { status: "FAILED", outcome: null, error: "The stored payload is not JSON", acted: false };
  }
  if (!actsOn(connection.provider, delivery.event, payload))
    return { status: "IGNORED", outcome: { reason: `${delivery.event} is not acted on` }, error: null, acted: false };
  const named = repositoryUrlsOf(connection.provider, payload)
    .map(repositoryKey)
    .filter((key): key is string => key !== null);
  if (named.length > 0) {
    const followed = await candidates();
    if (!named.some((key) => followed.some((c) => c.repository === key))) {
      return { status: "PROCESSED", outcome: { reason: UNFOLLOWED_REASON, repository: named[0] }, error: null, acted: false };
    }
  }
  let events;
  try {
    events = gitEvents(connection.provider, delivery.event, payload);
  } catch (error) {
    if (error instanceof PayloadError) return { status: "FAILED", outcome: null, error: error.message, acted: false };
    throw error;
  }
  const outcomes: (PushOutcome | PreviewOutcome)[] = [];
  let acted = false;
  for (const event of events) {
    if (event.kind === "push") {
      const outcome = await onPush(services, connection, event, await candidates());
      acted ||= outcome.deployments.length > 0;
      outcomes.push(outcome);
    } else {
      const outcome = await onPullRequest(services, connection, event, await candidates());
      acted ||= outcome.previews.length > 0;
      outcomes.push(outcome);
    }
  }
  return { status: "PROCESSED", outcome: { events: outcomes }, error: null, acted };
}

/**
 * A push deploys, at the pushed commit, every service (outside previews) from that repository
 * that follows the pushed branch with auto-deploy on and whose path filters the changed files
 * pass, or, for a tag, every service that follows tags: one deployment per environment. A push of
 * a branch some service follows is recorded (push-order.ts), whatever it deployed: the next
 * pushes of the branch are ordered against it.
 */
export async function onPush(services: Services, connection: ConnectionRow, event: PushEvent, candidates: Candidate[]): Promise<PushOutcome> {
  const refName = "branch" in event.ref ? `refs/heads/${event.ref.branch}` : `refs/tags/${event.ref.tag}`;
  const outcome: PushOutcome = { ref: refName, commit: event.commit, before: event.before, pushedAt: event.pushedAt, deployments: [], skipped: [] };
  if (event.deleted) return { ...outcome, reason: "the ref was deleted" };
  const keys = new Set(event.repositoryUrls.map(repositoryKey).filter((k): k is string => k !== null));
  const fromRepository = candidates.filter((c) => !c.inPreview && c.repository !== null && keys.has(c.repository));
  // Services that follow the pushed ref, in order; only these need the changed files.
  const following = fromRepository.filter((candidate) => {
    const ref = candidate.config.git.ref;
    return "tag" in event.ref ? triggersOf(candidate.service).followTags : ref !== undefined && "branch" in ref && ref.branch === event.ref.branch;
  });
  // One key per branch of the repository, whichever of its URLs the services name.
  const branch =
    "branch" in event.ref && following.length > 0 ? { connectionId: connection.id, repository: [...keys].sort()[0]!, branch: event.ref.branch } : null;
  const done = await deployFollowing(services, connection, event, { fromRepository, following, branch }, outcome);
  const deployed = done.deployments.flatMap((d) => d.serviceIds);
  if (branch) await recordPush(services.db, branch, event, deployed);
  return done;
}

/** What onPush deploys of the services that follow the pushed ref, and why it skips the others. */
async function deployFollowing(
  services: Services,
  connection: ConnectionRow,
  event: PushEvent,
  { fromRepository, following, branch }: { fromRepository: Candidate[]; following: Candidate[]; branch: BranchKey | null },
  outcome: PushOutcome,
): Promise<PushOutcome> {
  if (skipsDeploy(event.headMessage)) {
    return {
      ...outcome,
      reason: "the head commit says [skip deploy]",
      skipped: fromRepository.map((c) => ({ serviceId: c.service.id, reason: "[skip deploy]" })),
    };
  }
  // A service saved without a branch and without the check that records the default one follows
  // whatever the remote's HEAD names at deploy time, which a push delivery does not say.
  if ("branch" in event.ref) {
    for (const candidate of fromRepository.filter((c) => c.config.git.ref === undefined)) {
      outcome.skipped.push({
        serviceId: candidate.service.id,
        reason: "it follows the repository's default branch, not recorded when it was saved: set its branch",
      });
    }
  }
  const filtered = "branch" in event.ref && following.some((c) => triggersOf(c.service).autoDeploy && hasPathFilters(triggersOf(c.service)));
  const changedFiles = filtered ? await changedFilesOf(services, connection, event, outcome) : event.changedFiles;
  const chosen: Candidate[] = [];
  for (const candidate of following) {
    const triggers = triggersOf(candidate.service);
    if ("tag" in event.ref) chosen.push(candidate);
    else if (!triggers.autoDeploy) outcome.skipped.push({ serviceId: candidate.service.id, reason: "auto-deploy is off" });
    else if (!pathsAllow(triggers, changedFiles)) outcome.skipped.push({ serviceId: candidate.service.id, reason: "no changed file passes its path filters" });
    else chosen.push(candidate);
  }
  const current = branch ? await notOlder(services, branch, event, chosen, outcome) : chosen;

  const byEnvironment = new Map<string, Candidate[]>();
  for (const candidate of current) byEnvironment.set(candidate.environment.id, [...(byEnvironment.get(candidate.environment.id) ?? []), candidate]);
  const actor = webhookActor(connection, event.actor);
  for (const [environmentId, list] of byEnvironment) {
    const serviceIds = list.map((c) => c.service.id);
    const { deployment, merged } = await requestDeployment(
      { ...services, actor },
      { environmentId, action: "DEPLOY", serviceIds, refs: Object.fromEntries(serviceIds.map((id) => [id, { commit: event.commit }])) },
    );
    outcome.deployments.push({ environmentId, deploymentId: deployment.id, serviceIds, merged });
  }
  return outcome;
}

/**
 * The chosen services this push is not older than: each is compared with the push it was last
 * deployed from, against the pushes recorded for the branch (push-order.ts). The others are
 * skipped, and when none is left the push says why.
 */
async function notOlder(services: Services, branch: BranchKey, event: PushEvent, chosen: Candidate[], outcome: PushOutcome) {
  if (chosen.length === 0) return chosen;
  const recorded = await branchPushes(services.db, branch);
  const deployed = new Map(chosen.map((c) => [c.service.id, lastDeployedPush(recorded, c.service.id)]));
  const current: Candidate[] = [];
  for (const candidate of chosen) {
    const last = deployed.get(candidate.service.id);
    if (last && isOlderPush(event, last, recorded)) {
      outcome.skipped.push({ serviceId: candidate.service.id, reason: `an older push than the one it was deployed from (${last.commit.slice(0, 7)})` });
    } else {
      current.push(candidate);
    }
  }
  if (current.length === 0) {
    const newer = [...new Set(chosen.map((c) => deployed.get(c.service.id)!.commit.slice(0, 7)))].join(", ");
    outcome.reason = `an older push than the one already deployed from the branch (${newer}): not deployed`;
  }
  return current;
}

/**
 * The files a push changed: from its payload, or else from the provider's API when the
 * connection has a token and the push names its previous commit. What stays unknown is noted on
 * the outcome and deploys (triggers.ts pathsAllow).
 */
async function changedFilesOf(services: Services, connection: ConnectionRow, event: PushEvent, outcome: PushOutcome): Promise<string[] | null> {
  if (event.changedFiles !== null) return event.changedFiles;
  const unknown = (reason: string) => {
    outcome.changedFilesUnknown = reason;
    return null;
  };
  if (event.rewritten) return unknown("the push moved the branch without new commits, or by force: the files it changed cannot be listed");
  if (!hasApi(connection.provider)) return unknown("the delivery lists no changed files");
  if (event.before === null) return unknown("the push created the branch");
  const token = await connectionApiToken(services, connection);
  if (!token) return unknown(`the payload lists no changed files and the connection has no ${connection.provider} API token to ask`);
  try {
    const files = await changedFilesBetween(
      { provider: connection.provider, apiBaseUrl: connection.apiBaseUrl, token, repository: event.providerRepository },
      event.before,
      event.commit,
    );
    return files ?? unknown(`${connection.provider} listed too many changed files`);
  } catch (error) {
    return unknown(error instanceof Error ? error.message : String(error));
  }
}
