import { Logger as WorkerLogger, run, type Runner } from "graphile-worker";
import pg from "pg";
import type { Services } from "../server/context";
import { connectionSettings, guardPoolErrors, type ConnectionSettings } from "../server/db/client";
import type { Logger } from "../server/logger";
import { applyRetentionTask } from "./tasks/apply-retention";
import { dispatchDeployment } from "./tasks/dispatch-deployment";
import { downsampleMetrics } from "./tasks/downsample-metrics";
import { applySchedules } from "./tasks/apply-schedules";
import { processWebhooks } from "./tasks/process-webhooks";
import { reapEnvironments } from "./tasks/reap-environments";
import { RECONCILE_JOB_KEY, reconcileLeases } from "./tasks/reconcile-leases";
import { reportGitStatus } from "./tasks/report-git-status";
import { issueCertificateTask } from "./tasks/issue-certificate";
import { renewCertificates } from "./tasks/renew-certificates";
import { notifyEngineDisconnectedTask, sendNotificationTask } from "./tasks/send-notification";
import type { TaskName } from "../server/jobs/catalog";
import { defaultRetention, type RetentionPolicy } from "../server/retention/retention";
import { holdWorkerLiveness } from "./liveness";

/**
 * graphile-worker's log lines into ours. Its per-job lines ("Completed task …", with the whole
 * job row) are routine every few seconds: they go to debug, keeping only the job's id and task.
 */
function graphileLogger(logger: Logger): WorkerLogger {
  return new WorkerLogger((scope) => {
    const child = logger.child({
      ...(scope.label ? { label: scope.label } : {}),
      ...(scope.jobId ? { jobId: scope.jobId } : {}),
      ...(scope.taskIdentifier ? { task: scope.taskIdentifier } : {}),
    });
    return (level, message) => {
      if (level === "error") child.error(message);
      else if (level === "warning") child.warn(message);
      else child.debug(message);
    };
  });
}

export type WorkerOptions = {
  services: Services;
  connectionString: string;
  logger: Logger;
  reconcileIntervalMs?: number;
  concurrency?: number;
  /** What the hourly retention task keeps (SLIPWAY_RETENTION_*_DAYS). */
  retention?: RetentionPolicy;
  /** The bounds of graphile-worker's connections and the liveness one: server/db/client.ts's by default (tests shorten them). */
  connection?: ConnectionSettings;
};

/**
 * The worker process's graphile-worker runner. graphile-worker 0.16.6 is the last release that
 * declares support for Node 20, the runtime Slipway targets; its task and job-key API is the
 * one used here.
 */
export async function startWorker(options: WorkerOptions): Promise<Runner> {
  const { services, logger } = options;
  const reconcileIntervalMs = options.reconcileIntervalMs ?? 5000;
  const taskList: Record<TaskName, ReturnType<typeof dispatchDeployment>> = {
    dispatch_deployment: dispatchDeployment(services),
    reconcile_leases: reconcileLeases(services, reconcileIntervalMs),
    apply_schedules: applySchedules(services),
    reap_environments: reapEnvironments(services),
    process_webhooks: processWebhooks(services, logger),
    report_git_status: reportGitStatus(services),
    downsample_metrics: downsampleMetrics(services),
    apply_retention: applyRetentionTask(services, options.retention ?? defaultRetention),
    send_notification: sendNotificationTask(services),
    issue_certificate: issueCertificateTask(services),
    renew_certificates: renewCertificates(services),
    notify_engine_disconnected: notifyEngineDisconnectedTask(services),
  };
  const concurrency = options.concurrency ?? 8;
  const pool = graphilePool(options.connectionString, concurrency, options.connection, logger);
  const liveness = holdWorkerLiveness(options.connectionString, logger, options.connection);
  // The liveness locks and the pool end with the runner (its workers are gone then), not before.
  const release = async () => {
    await liveness.close();
    await pool.end();
  };
  const runner = await run({
    pgPool: pool,
    events: liveness.events,
    concurrency,
    noHandleSignals: true,
    pollInterval: 1000,
    taskList,
    // Minute granularity is enough for schedules and expiry; `?max=1`: a failed run is not
    // retried, the next minute's run covers it (both tasks catch up from their own state).
    crontab: [
      "* * * * * apply_schedules ?max=1",
      "* * * * * reap_environments ?max=1",
      "* * * * * downsample_metrics ?max=1",
      "* * * * * reconcile_leases ?max=1",
      // Hourly: retention deletes in small batches, so an hour's growth is a short run.
      "17 * * * * apply_retention ?max=1",
      // Daily: certificates are renewed 30 days before they expire, so a failed day has 29 more.
      "43 3 * * * renew_certificates ?max=1",
    ].join("\n"),
    logger: graphileLogger(logger),
  }).catch(async (error: unknown) => {
    await release();
    throw error;
  });
  void runner.promise.then(release, release);
  // A caller that is told the start failed starts another runner: this one must not run on beside it.
  await runner.addJob("reconcile_leases", {}, { jobKey: RECONCILE_JOB_KEY, maxAttempts: 1 }).catch(async (error: unknown) => {
    await runner.stop().catch((stopError: unknown) => logger.debug({ err: stopError }, "the runner whose start failed did not stop cleanly"));
    throw error;
  });
  return runner;
}

/**
 * graphile-worker's pool, made here rather than from a `connectionString` (graphile-worker 0.16's
 * `pgPool` option; it does not end a pool it was given) so that it has the control plane's
 * bounds: without them a worker whose database went silent waits for ever on its next job
 * instead of failing the poll and polling again on a new connection. Its queries are its own
 * (taking, completing and failing jobs, the cron's), all short, and its LISTEN connection sends
 * a query only to listen, so the query timeout cuts nothing that runs long: tasks query through
 * `services.db`.
 */
function graphilePool(connectionString: string, concurrency: number, settings: ConnectionSettings | undefined, logger: Logger): pg.Pool {
  // One connection per job running, one for LISTEN, one for the cron and job additions: the
  // bound documented in deploy/README.md.
  const pool = new pg.Pool({ ...connectionSettings(settings), connectionString, max: concurrency + 2 });
  guardPoolErrors(pool, (error) => logger.warn({ err: error }, "a job runner's database connection failed"));
  return pool;
}
