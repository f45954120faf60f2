import { z } from "zod";

/**
 * Every graphile-worker task: its identifier and the schema of its payload. Producers type their
 * payloads with it; each task parses its payload with it before doing anything. It lives with
 * the producers in server/ (the worker's tasks call the server's domain functions), so the
 * dependency goes one way: worker -> server, never back.
 */
export const taskCatalog = {
  /** Leases the next queued deployment of an environment to its cluster, when none is running. */
  dispatch_deployment: z.object({ environmentId: z.string().uuid() }),
  /** Re-dispatches or fails deployments whose engine stopped heartbeating; reschedules itself. */
  reconcile_leases: z.object({}),
  /** Starts and stops environments at their schedule's boundaries (crontab, every minute). */
  apply_schedules: z.object({}).passthrough(),
  /** Deletes expired environments (crontab, every minute); a dry run only logs. */
  reap_environments: z.object({ dryRun: z.boolean().default(false) }).passthrough(),
  /** Processes every pending webhook delivery in order (one job per intake batch, coalesced by job key). */
  process_webhooks: z.object({}).passthrough(),
  /** Reports a preview deployment to the git provider: commit status, then the pull request comment. */
  report_git_status: z.object({
    previewId: z.string().uuid(),
    deploymentId: z.string().uuid(),
    stage: z.enum(["requested", "final"]),
    /** When the first check ran (ms since the epoch): checks stop after a while. */
    since: z.number().optional(),
  }),
  /** Rolls raw metric samples up into minute averages and drops raw samples after 24 hours (crontab, every minute). */
  downsample_metrics: z.object({}).passthrough(),
  /** Deletes what the retention policy no longer keeps, in batches (crontab, hourly; server/retention). */
  apply_retention: z.object({}).passthrough(),
  /** Sends one notification delivery to its rule's channel; graphile-worker retries it with backoff. */
  send_notification: z.object({ deliveryId: z.string().uuid() }),
  /** Obtains or renews one custom domain's certificate by ACME HTTP-01 (server/domains/acme.ts); a failure is recorded on the domain. */
  issue_certificate: z.object({ domainId: z.string().uuid() }),
  /** Adds issue_certificate jobs for the certificates that expire within 30 days (crontab, daily). */
  renew_certificates: z.object({}).passthrough(),
  /** Sends engine.disconnected if the cluster's engine is still away a grace period after it disconnected (coalesced per cluster by job key). */
  notify_engine_disconnected: z.object({ clusterId: z.string().uuid(), reason: z.string().max(200), disconnectedAt: z.string().datetime() }),
} as const;

export type TaskName = keyof typeof taskCatalog;
export type TaskPayload<N extends TaskName> = z.infer<(typeof taskCatalog)[N]>;
