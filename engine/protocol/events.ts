import { z } from "zod";

/**
 * Deployment events: what the engine (and the control plane, for queueing, cancel and lease
 * expiry) records while a deployment runs. Every status a user sees is projected from these.
 */

export const deploymentSteps = [
  "deployment",
  "lease",
  "clone",
  "build",
  "start",
  "health_check",
  "switch",
  "drain",
  /** A JOB's run (lifecycle jobs run inside the deployment of their environment's start, stop or delete). */
  "run",
  "stop",
  "restart",
  "delete",
] as const;
export const deploymentStep = z.enum(deploymentSteps);
export type DeploymentStep = z.infer<typeof deploymentStep>;

/** `skipped`: a service's step that never started because something it waits for failed (the message says what). */
export const stepStatuses = ["started", "succeeded", "failed", "canceled", "requested", "expired", "skipped"] as const;
export const stepStatus = z.enum(stepStatuses);
export type StepStatus = z.infer<typeof stepStatus>;

/** The longest event message and log line the control plane stores; senders shorten theirs to fit. */
export const EVENT_MESSAGE_MAX = 4000;
export const LOG_LINE_MAX = 16_384;

/**
 * Fits a text into `max` characters, keeping its beginning and its end (an error's cause and
 * its last lines) around a marker that says how much was left out.
 */
export function shortenText(text: string, max: number): string {
  if (text.length <= max) return text;
  const marker = (omitted: number) => `\n… ${omitted} characters omitted …\n`;
  const room = max - marker(text.length).length;
  if (room <= 0) return text.slice(0, max);
  const head = Math.floor(room / 3);
  const tail = room - head;
  return `${text.slice(0, head)}${marker(text.length - head - tail)}${text.slice(text.length - tail)}`;
}

/** The most outputs a job's run may write, and the longest name: what its event can carry (engine/runtime/job-runs.ts refuses more). */
export const OUTPUTS_MAX = 1000;
export const OUTPUT_KEY_MAX = 255;

export const COMMIT_SUBJECT_MAX = 300;
export const commitInfo = z.object({
  subject: z.string().max(COMMIT_SUBJECT_MAX),
  author: z.string().max(200),
  authoredAt: z.string().datetime({ offset: true }).optional(),
});
export type CommitInfo = z.infer<typeof commitInfo>;

export const deploymentEvent = z.object({
  /** Unique and increasing per deployment; re-sent events with the same seq are stored once. */
  seq: z.number().int().nonnegative(),
  serviceId: z.string().uuid().nullable(),
  step: deploymentStep,
  status: stepStatus,
  at: z.string().datetime(),
  durationMs: z.number().int().nonnegative().optional(),
  message: z.string().max(EVENT_MESSAGE_MAX).optional(),
  /** The exact commit a clone resolved to. */
  commit: z.string().optional(),
  /** What that commit says of itself: its subject line and author (read at clone time, for the history). */
  commitInfo: commitInfo.optional(),
  /**
   * A lifecycle JOB's successful run at an environment's start: the names of the variables it
   * wrote to $SLIPWAY_OUTPUT_FILE. Names only: the values, which may be tokens, stay with the
   * engine, which hands them to the services deployed after the job (engine/job-outputs.ts).
   */
  outputKeys: z.array(z.string().max(OUTPUT_KEY_MAX)).max(OUTPUTS_MAX).optional(),
});
/** What a step's event may say besides its status. */
export type StepDetails = Pick<DeploymentEvent, "durationMs" | "message" | "commit" | "commitInfo" | "outputKeys">;
export type DeploymentEvent = z.infer<typeof deploymentEvent>;

export const deploymentStatuses = [
  "QUEUED",
  "BUILDING",
  "DEPLOYING",
  "DEPLOYED",
  "STOPPING",
  "STOPPED",
  "DELETING",
  "DELETED",
  "BUILD_ERROR",
  "DEPLOYMENT_ERROR",
  "CANCELING",
  "CANCELED",
] as const;
export const deploymentStatus = z.enum(deploymentStatuses);
export type DeploymentStatus = z.infer<typeof deploymentStatus>;

export const terminalStatuses: ReadonlySet<DeploymentStatus> = new Set(["DEPLOYED", "STOPPED", "DELETED", "BUILD_ERROR", "DEPLOYMENT_ERROR", "CANCELED"]);

export const logFds = ["stdout", "stderr", "system"] as const;
export const logLine = z.object({
  seq: z.number().int().nonnegative(),
  at: z.string().datetime(),
  fd: z.enum(logFds),
  text: z.string().max(LOG_LINE_MAX),
  /**
   * Where a runtime line was read from (release and byte offset of its log file), the same each
   * time an engine reads it: the control plane stores one line per source and stream, so a line
   * read again after an engine restart is not stored twice (issue 12).
   */
  source: z.string().max(200).optional(),
});
export type LogLine = z.infer<typeof logLine>;

/** Where a batch of log lines belongs: a deployment's build and deploy output, or a service's runtime output. */
export const logStream = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("deployment"), deploymentId: z.string().uuid(), serviceId: z.string().uuid().nullable() }),
  z.object({ kind: z.literal("service"), serviceId: z.string().uuid(), releaseId: z.string() }),
]);
export type LogStream = z.infer<typeof logStream>;
