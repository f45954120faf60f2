import { Logger as WorkerLogger, run, type Runner } from "graphile-worker";
import type { Services } from "../server/context";
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
  const liveness = holdWorkerLiveness(options.connectionString, logger);
  const runner = await run({
    connectionString: options.connectionString,
    events: liveness.events,
    concurrency,
    // One connection per job running, one for LISTEN, one for the cron and job additions: the
    // bound documented in deploy/README.md.
    maxPoolSize: concurrency + 2,
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
  });
  await runner.addJob("reconcile_leases", {}, { jobKey: RECONCILE_JOB_KEY, maxAttempts: 1 });
  // The liveness locks end with the runner (its workers are gone then), not before.
  void runner.promise.then(liveness.close, liveness.close);
  return runner;
}
