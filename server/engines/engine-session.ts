import { and, asc, eq, getTableColumns, isNotNull, isNull, notInArray, sql } from "drizzle-orm";
import { terminalStatuses, type DeploymentEvent, type LogLine, type LogStream } from "../../engine/protocol/events";
import { HEARTBEAT_TASKS_MAX, type EngineHandshake, type EngineTask, type RuntimeServiceState } from "../../engine/protocol/messages";
import { hashToken } from "../auth/tokens";
import type { Services } from "../context";
import type { Executor } from "../db/client";
import { jsonParam, jsonValue, preparedOnce, timeParam, uuidsParam } from "../db/prepared";
import { clusters, deployments, environments, logLines, organizations, services, type ServiceRuntime } from "../db/schema";
import { redispatchAfterEngineRestart } from "../deployments/dispatch";
import { appendEngineEvents } from "../deployments/events";
import { openSnapshot } from "../deployments/snapshot";
import { endsDeployment } from "../deployments/status";
import { AppError } from "../errors";
import { logLevelOf } from "../../engine/protocol/log-level";
import { latestDeploymentJoin, latestDeploymentOfRow, serviceChangeNotice, serviceStatus, shownChanged, shownFieldsChanged } from "../overview/live-status";
import type { ServiceChanged } from "../realtime/ui-protocol";
import { unwrapCipher } from "../secrets/organization-cipher";

/**
 * What an authenticated engine may do, always within its own cluster: every query below is
 * bound to the cluster id the engine's token resolved to, so an engine sees only its own
 * cluster's tasks and only the secrets inside them.
 */
const finished = [...terminalStatuses];

export async function authenticateEngine({ db }: Services, token: string) {
  const [cluster] = await db
    .select()
    .from(clusters)
    .where(eq(clusters.engineTokenHash, hashToken(token)));
  if (!cluster) throw new AppError("UNAUTHORIZED", "Unknown or revoked engine token");
  return cluster;
}

/**
 * Records the engine's version and capabilities at its handshake, and its boot id: an engine
 * that comes back as a new process has its unfinished deployments handed out again at once.
 */
export async function recordEngineHello(svc: Services, clusterId: string, hello: Pick<EngineHandshake, "engineVersion" | "capabilities" | "bootId">) {
  const previousBootId = await svc.db.transaction(async (tx) => {
    const [cluster] = await tx.select({ bootId: clusters.engineBootId }).from(clusters).where(eq(clusters.id, clusterId)).for("update");
    await tx
      .update(clusters)
      .set({
        engineVersion: hello.engineVersion,
        capabilities: hello.capabilities,
        lastHeartbeatAt: svc.now(),
        ...(hello.bootId ? { engineBootId: hello.bootId } : {}),
      })
      .where(eq(clusters.id, clusterId));
    return cluster?.bootId ?? null;
  });
  // No earlier boot id (a first connection, or an engine from before boot ids): nothing to tell.
  if (hello.bootId && previousBootId && previousBootId !== hello.bootId) return redispatchAfterEngineRestart(svc, clusterId);
  return [];
}

/**
 * The oldest task leased to this cluster and not yet acknowledged for its current attempt; with
 * `deploymentId`, that deployment's only (the one a lease's notification names).
 */
export async function pullTask(svc: Services, clusterId: string, deploymentId?: string): Promise<EngineTask | null> {
  return (await leasedTasks(svc, clusterId, { deploymentId, limit: 1 }))[0] ?? null;
}

/**
 * The tasks leased to this cluster and not yet acknowledged for their current attempt, oldest
 * first, at most `limit`: what pulls one after the other would find.
 */
export async function leasedTasks(svc: Services, clusterId: string, { deploymentId, limit }: { deploymentId?: string; limit: number }): Promise<EngineTask[]> {
  const queries = preparedLeasedTasks(svc.db);
  const rows =
    deploymentId === undefined ? await queries.ofCluster.execute({ clusterId, limit }) : await queries.ofDeployment.execute({ clusterId, deploymentId, limit });
  return Promise.all(
    rows.map(async ({ deployment, trusted, isolateLoopback, kubernetesBuild, wrappedDataKey }) => {
      const cipher = await unwrapCipher(svc.keyring, deployment.organizationId, wrappedDataKey);
      return {
        deploymentId: deployment.id,
        attempt: deployment.attempt,
        snapshot: openSnapshot(cipher, deployment.id, deployment.snapshot),
        trusted,
        isolateLoopback,
        ...(kubernetesBuild ? { kubernetesBuild } : {}),
      };
    }),
  );
}

/**
 * leasedTasks' queries, prepared by name on each connection (issue 17, item 4): they run on
 * every heartbeat of every engine and on every dispatch.
 */
const preparedLeasedTasks = preparedOnce(prepareLeasedTasks);

function prepareLeasedTasks(db: Executor) {
  const query = (ofDeployment: boolean) =>
    // The cluster's settings as they are now (an ADMIN may have changed them since the deployment was asked for),
    // and the organization's wrapped key in the same round trip: a pull is on every dispatch's path.
    db
      .select({
        deployment: deployments,
        trusted: clusters.trusted,
        isolateLoopback: clusters.isolateLoopback,
        kubernetesBuild: clusters.kubernetesBuild,
        wrappedDataKey: organizations.wrappedDataKey,
      })
      .from(deployments)
      .innerJoin(clusters, eq(clusters.id, deployments.clusterId))
      .innerJoin(organizations, eq(organizations.id, deployments.organizationId))
      .where(
        and(
          eq(deployments.clusterId, sql.placeholder("clusterId")),
          ofDeployment ? eq(deployments.id, sql.placeholder("deploymentId")) : undefined,
          isNotNull(deployments.leasedAt),
          isNull(deployments.acknowledgedAt),
          notInArray(deployments.status, finished),
        ),
      )
      .orderBy(asc(deployments.leasedAt))
      .limit(sql.placeholder("limit"));
  return { ofCluster: query(false).prepare("leased_tasks_of_cluster"), ofDeployment: query(true).prepare("leased_task_of_deployment") };
}

/** The statements of every task's acknowledgement, event batch and log batch (see preparedOnce). */
const preparedDeploymentStatements = preparedOnce((db) => ({
  ownDeployment: db
    .select()
    .from(deployments)
    .where(and(eq(deployments.id, sql.placeholder("deploymentId")), eq(deployments.clusterId, sql.placeholder("clusterId"))))
    .prepare("own_deployment"),
  ownDeploymentLockingEnvironment: db
    .select(getTableColumns(deployments))
    .from(deployments)
    .innerJoin(environments, eq(environments.id, deployments.environmentId))
    .where(and(eq(deployments.id, sql.placeholder("deploymentId")), eq(deployments.clusterId, sql.placeholder("clusterId"))))
    .for("update", { of: environments })
    .prepare("own_deployment_locking_environment"),
  acknowledge: db
    .update(deployments)
    // Every value a placeholder, updated_at too: its $onUpdate would run once, when this is prepared.
    .set({ acknowledgedAt: timeParam("now"), leaseExpiresAt: timeParam("leaseExpiresAt"), updatedAt: timeParam("now") })
    .where(
      and(
        eq(deployments.id, sql.placeholder("deploymentId")),
        eq(deployments.clusterId, sql.placeholder("clusterId")),
        eq(deployments.attempt, sql.placeholder("attempt")),
        notInArray(deployments.status, finished),
      ),
    )
    .returning({ id: deployments.id })
    .prepare("acknowledge_task"),
  // A service's runtime log batch: its organization, when it is the cluster's.
  serviceOfCluster: db
    .select({ organizationId: services.organizationId })
    .from(services)
    .innerJoin(environments, eq(environments.id, services.environmentId))
    .where(and(eq(services.id, sql.placeholder("serviceId")), eq(environments.clusterId, sql.placeholder("clusterId"))))
    .prepare("service_of_cluster"),
}));

/**
 * The deployment, when it is the cluster's; `lockingEnvironment`: with its environment's row lock
 * for the transaction, taken in the same statement (see lockEnvironment).
 */
async function ownDeployment({ db }: Pick<Services, "db">, clusterId: string, deploymentId: string, options: { lockingEnvironment?: boolean } = {}) {
  const statements = preparedDeploymentStatements(db);
  const statement = options.lockingEnvironment ? statements.ownDeploymentLockingEnvironment : statements.ownDeployment;
  const [deployment] = await statement.execute({ deploymentId, clusterId });
  if (!deployment) throw new AppError("NOT_FOUND", "Deployment not found on this cluster");
  return deployment;
}

function extendedLease({ now, leaseSeconds }: Services) {
  return new Date(now().getTime() + leaseSeconds * 1000);
}

/**
 * Marks the task's attempt as received by the engine, in one statement (it is on the path of
 * every dispatch): an acknowledgement of an older attempt, or of a deployment that has ended,
 * changes nothing.
 */
export async function acknowledgeTask(svc: Services, clusterId: string, deploymentId: string, attempt: number) {
  const acknowledged = await preparedDeploymentStatements(svc.db).acknowledge.execute({
    deploymentId,
    clusterId,
    attempt,
    now: svc.now().toISOString(),
    leaseExpiresAt: extendedLease(svc).toISOString(),
  });
  // Only an unknown deployment is an error: it is another cluster's, or none at all.
  if (acknowledged.length === 0) await ownDeployment(svc, clusterId, deploymentId);
}

/**
 * Stores a batch of the engine's events, and extends the lease with the status it writes (one
 * UPDATE of the deployment's row: see refreshStatus in events.ts). A batch that ends the
 * deployment takes the environment's row lock first, before anything locks the deployment's
 * row, since its end leases the environment's next deployment under it (events.ts). A cancel
 * takes the two in that order too (the environment's, then the deployment's): taken the other
 * way round here, each could wait for the other.
 */
export async function recordEngineEvents(svc: Services, clusterId: string, deploymentId: string, events: DeploymentEvent[]) {
  const ends = events.some(endsDeployment);
  // An ending batch reads the deployment with the environment's lock, in one statement (a
  // re-sent end of a deployment that ended takes it too, harmlessly); any other reads it first.
  const read = ends ? undefined : await ownDeployment(svc, clusterId, deploymentId);
  await svc.db.transaction(async (tx) => {
    const deployment = read ?? (await ownDeployment({ db: tx }, clusterId, deploymentId, { lockingEnvironment: true }));
    const running = !terminalStatuses.has(deployment.status);
    await appendEngineEvents(tx, svc, deployment, events, running ? extendedLease(svc) : undefined);
  });
}

/** The stream a log line is stored under (log_lines.stream): a deployment's output, or a service's runtime output. */
export const logStreamKey = (stream: LogStream) => (stream.kind === "deployment" ? `deployment:${stream.deploymentId}` : `service:${stream.serviceId}`);

/**
 * Stores a batch of lines: a re-sent line (same seq) or one read again after an engine restart
 * (same source) once. Returns the lines stored now, to stream to subscribers; null when the
 * service no longer exists.
 */
export async function recordLogBatch(svc: Services, clusterId: string, stream: LogStream, lines: LogLine[]): Promise<LogLine[] | null> {
  let organizationId: string;
  let deploymentId: string | null = null;
  let serviceId: string | null;
  if (stream.kind === "deployment") {
    const deployment = await ownDeployment(svc, clusterId, stream.deploymentId);
    organizationId = deployment.organizationId;
    deploymentId = deployment.id;
    serviceId = stream.serviceId;
  } else {
    const [service] = await preparedDeploymentStatements(svc.db).serviceOfCluster.execute({ serviceId: stream.serviceId, clusterId });
    // Lines of a service deleted meanwhile have nowhere to go: drop them.
    if (!service) return null;
    organizationId = service.organizationId;
    serviceId = stream.serviceId;
  }
  const key = logStreamKey(stream);
  // Ten arrays rather than ten parameters per line (issue 17, item 7): the ORM mapped and
  // PostgreSQL parsed each of a thousand lines' values, and a batch took four times as long.
  // No conflict target: a line that repeats either unique key (stream and seq, stream and source) is skipped.
  const inserted = await svc.db.execute<{ seq: string }>(sql`
    insert into ${logLines} (organization_id, stream, seq, deployment_id, service_id, fd, text, at, source, level)
    select ${organizationId}::uuid, ${key}, l.seq, ${deploymentId}::uuid, ${serviceId}::uuid, l.fd, l.text, l.at, l.source, l.level
    from unnest(
      ${sql.param(lines.map((line) => line.seq))}::bigint[],
      ${sql.param(lines.map((line) => line.fd))}::log_fd[],
      ${sql.param(lines.map((line) => line.text))}::text[],
      ${sql.param(lines.map((line) => line.at))}::timestamptz[],
      ${sql.param(lines.map((line) => line.source ?? null))}::text[],
      ${sql.param(lines.map((line) => logLevelOf(line.text)))}::text[]
    ) as l(seq, fd, text, at, source, level)
    on conflict do nothing
    returning seq`);
  const stored = new Set(inserted.rows.map((row) => Number(row.seq)));
  return lines.filter((line) => stored.has(line.seq));
}

/**
 * How stale a live engine's stamp may grow before a heartbeat stamps it again: a cluster counts
 * as connected within 20 s of its last heartbeat (server/api/routers/clusters.ts), which leaves
 * room for this, a 5 s heartbeat's period and the stamps' flush (heartbeat-stamps.ts). A thousand
 * engines wrote 200 cluster rows a second to say nothing new, each a commit waiting for the disk
 * (issue 17).
 */
export const HEARTBEAT_STAMP_MS = 10_000;

/** The cluster's stamp is not the heartbeat's to write: its web process gathers them (heartbeat-stamps.ts). */
export type HeartbeatOptions = {
  /** What the connection's earlier heartbeats read of its services, to skip reading them again. */
  memory?: ReportMemory;
  /** False when the web process knows no task waits for the cluster (engine-gateway.ts): the answer carries none, unread. */
  readTasks?: boolean;
};

/** Of one service, what a heartbeat read of it (its stored report, as written after the read) and when. */
type RememberedService = { environmentId: string; runtime: ServiceRuntime | null; checkedAt: number };

/**
 * A connection's memory of its services' stored reports (issue 17): in a fleet, nearly every
 * heartbeat repeats the last report, and reading the services to find that nothing is due was
 * most of a heartbeat's work. A service is read again when its report shows something new, when
 * a deployment of its environment was announced at or after the last read (its end makes a write
 * due: recordHeartbeat), and REPORT_REFRESH_MS after its last write, when one is due anyway.
 */
export type ReportMemory = {
  services: Map<string, RememberedService>;
  /** When this process last heard a deployment of the environment announced (server/realtime/engine-gateway.ts). */
  lastAnnounced(environmentId: string): number | undefined;
};

/** How old a service's report time may get while nothing the engine reports of it changes. */
export const REPORT_REFRESH_MS = 60_000;

/**
 * A heartbeat keeps the leases of the deployments the engine is working on, records the state
 * of its running releases, and answers with cancel requests (in case a cancel notification was
 * lost while the engine was disconnected) and the tasks leased to the cluster and not yet
 * acknowledged (in case their `task:available` was lost): the engine needs no pull after it.
 */
export async function answerHeartbeat(svc: Services, clusterId: string, active: string[], runtime: RuntimeServiceState[], options: HeartbeatOptions = {}) {
  // Side by side on the pool, not one after the other: the read depends on nothing the writes
  // change (they touch the cluster's heartbeat time, the leases' expiry of deployments already
  // taken, and the services' runtime; the read selects on lease and acknowledgement times and
  // status), and a plain read never waits on the writes' row locks. A task leased after the read
  // is announced, and found by the next heartbeat if that announcement is lost, as with a pull.
  const [{ cancel }, tasks] = await Promise.all([
    recordHeartbeat(svc, clusterId, active, runtime, options),
    options.readTasks === false ? [] : leasedTasks(svc, clusterId, { limit: HEARTBEAT_TASKS_MAX }),
  ]);
  return { cancel, tasks };
}

/**
 * A report's services as stored, of the cluster only, with whether a deployment of their
 * environment ran since their report, and what their status needs of their latest deployment
 * (read with them: a report that changes a service needs it, and a read of its own was a round
 * trip more on the path of every deployment).
 */
function servicesBefore(db: Executor) {
  const last = latestDeploymentJoin(db);
  return last.joinedTo(
    db
      .select({
        ...last.columns,
        id: services.id,
        organizationId: services.organizationId,
        environmentId: services.environmentId,
        runtime: services.runtime,
        // The environment's latest deployment runs, or ended after the stored report.
        deployedSince: sql<boolean>`coalesce((
        select ${deployments.finishedAt} is null or ${deployments.finishedAt} > (${services.runtime}->>'reportedAt')::timestamptz
        from ${deployments} where ${deployments.environmentId} = ${services.environmentId}
        order by ${deployments.createdAt} desc limit 1), false)`,
      })
      .from(services)
      // Only the cluster's own services. (With a join, drizzle names every column with its
      // table: a select of one table leaves them bare, which turned the subquery's
      // correlation above into "environment_id" = "environment_id".)
      .innerJoin(environments, and(eq(environments.id, services.environmentId), eq(environments.clusterId, sql.placeholder("clusterId"))))
      .$dynamic(),
  );
}

/** The statements of every heartbeat and engine report (see preparedOnce): a thousand engines send one every few seconds. */
const heartbeatStatements = preparedOnce((db) => ({
  keepLeases: db
    .update(deployments)
    .set({ leaseExpiresAt: timeParam("leaseExpiresAt"), updatedAt: timeParam("updatedAt") })
    .where(
      and(
        eq(deployments.clusterId, sql.placeholder("clusterId")),
        sql`${deployments.id} = any(${uuidsParam("active")})`,
        notInArray(deployments.status, finished),
      ),
    )
    .returning({ id: deployments.id, cancelRequestedAt: deployments.cancelRequestedAt })
    .prepare("heartbeat_keep_leases"),
  // One service (what a report usually changes) and several: `= $1` gets a generic plan after a
  // few runs, where `= any($1)` is planned at every run (its custom plans, for an array of one,
  // always look cheaper than a generic one), which cost PostgreSQL more than running it.
  serviceBefore: servicesBefore(db)
    .where(eq(services.id, sql.placeholder("serviceId")))
    .prepare("heartbeat_service_before"),
  servicesBefore: servicesBefore(db)
    .where(sql`${services.id} = any(${uuidsParam("reported")})`)
    .prepare("heartbeat_services_before"),
  // With the announcement of what pages show of the service, when the report changes it (a null
  // announcement: none), in the same statement: a round trip less per such report, and the
  // announcement goes out exactly when the state it tells of is committed.
  saveRuntime: db
    .update(services)
    .set({ runtime: jsonParam<ServiceRuntime>("runtime"), updatedAt: timeParam("updatedAt") })
    .where(eq(services.id, sql.placeholder("serviceId")))
    .returning({ announced: serviceChangeNotice(sql.placeholder("announcement")) })
    .prepare("heartbeat_save_runtime"),
}));

/**
 * The heartbeat's writes: the leases it keeps, its services' runtime state. A service's state is
 * written when something shown of it changed, when a deployment of its environment ended since
 * its last report (its status then follows the report again, serviceStatus), or once
 * REPORT_REFRESH_MS passed; otherwise nothing of it is written.
 */
export async function recordHeartbeat(svc: Services, clusterId: string, active: string[], runtime: RuntimeServiceState[], { memory }: HeartbeatOptions = {}) {
  const reportedAt = svc.now();
  const statements = heartbeatStatements(svc.db);
  let cancel: string[] = [];
  if (active.length > 0) {
    const held = await statements.keepLeases.execute({
      clusterId,
      active,
      leaseExpiresAt: extendedLease(svc).toISOString(),
      updatedAt: new Date().toISOString(),
    });
    cancel = held.filter((d) => d.cancelRequestedAt).map((d) => d.id);
  }
  const nextOf = (state: RuntimeServiceState): ServiceRuntime => ({
    state: state.state,
    releaseId: state.releaseId,
    restarts: state.restarts,
    commit: state.commit,
    reportedAt: reportedAt.toISOString(),
    ...(state.lastRestart ? { lastRestart: state.lastRestart } : {}),
    ...(state.lastRun ? { lastRun: state.lastRun } : {}),
    ...(state.nextRunAt ? { nextRunAt: state.nextRunAt } : {}),
    ...(state.missed ? { missed: state.missed } : {}),
  });
  const alreadyStored = (state: RuntimeServiceState) => {
    const remembered = memory?.services.get(state.serviceId);
    if (!remembered?.runtime) return false;
    const announced = memory!.lastAnnounced(remembered.environmentId);
    return (
      (announced === undefined || announced < remembered.checkedAt) &&
      reportedAt.getTime() - Date.parse(remembered.runtime.reportedAt) < REPORT_REFRESH_MS &&
      !shownFieldsChanged(remembered.runtime, nextOf(state))
    );
  };
  const reported = runtime.filter((state) => !alreadyStored(state)).map((state) => state.serviceId);
  const checkedAt = reportedAt.getTime();
  const before =
    reported.length === 0
      ? []
      : reported.length === 1
        ? await statements.serviceBefore.execute({ clusterId, serviceId: reported[0] })
        : await statements.servicesBefore.execute({ clusterId, reported });
  const previous = new Map(before.map((row) => [row.id, row]));
  const updates = runtime.flatMap((state) => {
    const known = previous.get(state.serviceId);
    // Not read (nothing new: see alreadyStored), of another cluster, or deleted since: nothing to record.
    if (!known) return [];
    const next = nextOf(state);
    const stored = known.runtime;
    const due = !stored || known.deployedSince || shownFieldsChanged(stored, next) || reportedAt.getTime() - Date.parse(stored.reportedAt) >= REPORT_REFRESH_MS;
    return due ? [{ known, next }] : [];
  });
  if (memory) {
    // Only what the engine reports now: a service it stopped reporting (deleted, moved) is forgotten.
    const reportedNow = new Set(runtime.map((state) => state.serviceId));
    for (const id of memory.services.keys()) if (!reportedNow.has(id)) memory.services.delete(id);
    // As read; those written below are remembered with what was written.
    for (const row of before) memory.services.set(row.id, { environmentId: row.environmentId, runtime: row.runtime, checkedAt });
  }
  for (const { known, next } of updates) {
    const last = latestDeploymentOfRow(known);
    const change: ServiceChanged | null = shownChanged(last, known.runtime, next)
      ? { serviceId: known.id, environmentId: known.environmentId, organizationId: known.organizationId, status: serviceStatus(last, next) }
      : null;
    await statements.saveRuntime.execute({
      serviceId: known.id,
      runtime: jsonValue(next),
      updatedAt: new Date().toISOString(),
      announcement: change && JSON.stringify(change),
    });
    memory?.services.set(known.id, { environmentId: known.environmentId, runtime: next, checkedAt });
  }
  return { cancel };
}
