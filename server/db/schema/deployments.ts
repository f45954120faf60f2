import { sql } from "drizzle-orm";
import { bigint, bigserial, index, integer, jsonb, pgEnum, pgSequence, pgTable, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { type CommitInfo, deploymentStatuses, deploymentSteps, logFds, stepStatuses } from "../../../engine/protocol/events";
import { deploymentActions, type Snapshot } from "../../../engine/protocol/snapshot";
import { clusters } from "./clusters";
import { createdAt, id, updatedAt } from "./columns";
import { organizations } from "./organizations";
import type { LogLevel } from "../../../engine/protocol/log-level";
import { environments } from "./projects";

export const deploymentActionEnum = pgEnum("deployment_action", deploymentActions);
export const deploymentStatusEnum = pgEnum("deployment_status", deploymentStatuses);
export const origins = ["UI", "API", "CLI", "WEBHOOK", "SCHEDULER", "SYSTEM"] as const;
export type Origin = (typeof origins)[number];
export const originEnum = pgEnum("origin", origins);
export const deploymentStepEnum = pgEnum("deployment_step", deploymentSteps);
export const stepStatusEnum = pgEnum("step_status", stepStatuses);
export const logFdEnum = pgEnum("log_fd", logFds);

/**
 * Secrets inside a stored snapshot stay encrypted (`value` holds ciphertext for secret
 * variables); they are decrypted only when the task is handed to the engine of the cluster.
 */
export type StoredSnapshot = Snapshot;

/**
 * Why a deployment was made, when neither its actor nor `rollbackOf` says it: a promotion from
 * another environment, or the first deployment of a clone. Names are kept as they were, so the
 * history reads right after a rename or a delete.
 */
export type DeploymentCause =
  | { kind: "promote"; fromEnvironmentId: string; fromEnvironment: string; fromDeploymentId: string }
  | { kind: "clone"; fromEnvironmentId: string; fromEnvironment: string };

export const deployments = pgTable(
  "deployments",
  {
    id: id(),
    organizationId: uuid("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    environmentId: uuid("environment_id")
      .notNull()
      .references(() => environments.id, { onDelete: "cascade" }),
    clusterId: uuid("cluster_id")
      .notNull()
      .references(() => clusters.id, { onDelete: "cascade" }),
    action: deploymentActionEnum("action").notNull(),
    /** The services acted on; null means every service of the environment. */
    serviceIds: uuid("service_ids").array(),
    snapshot: jsonb("snapshot").$type<StoredSnapshot>().notNull(),
    /** Projection of the deployment's events (server/deployments/status.ts); never set by hand. */
    status: deploymentStatusEnum("status").notNull().default("QUEUED"),
    statusMessage: text("status_message"),
    origin: originEnum("origin").notNull(),
    actorId: uuid("actor_id"),
    actorLabel: text("actor_label").notNull(),
    /** The earlier deployment this one redeploys as it was (a rollback), when it is one. */
    rollbackOf: uuid("rollback_of"),
    cause: jsonb("cause").$type<DeploymentCause>(),
    /** Resolved commit per service id, as reported by the engine's clone step. */
    commits: jsonb("commits").$type<Record<string, string>>().notNull().default({}),
    /** Subject and author of each service's commit, from the same clone events (the history's context). */
    commitDetails: jsonb("commit_details").$type<Record<string, CommitInfo>>().notNull().default({}),
    attempt: integer("attempt").notNull().default(0),
    leasedAt: timestamp("leased_at", { withTimezone: true }),
    leaseExpiresAt: timestamp("lease_expires_at", { withTimezone: true }),
    acknowledgedAt: timestamp("acknowledged_at", { withTimezone: true }),
    cancelRequestedAt: timestamp("cancel_requested_at", { withTimezone: true }),
    startedAt: timestamp("started_at", { withTimezone: true }),
    finishedAt: timestamp("finished_at", { withTimezone: true }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index("deployments_environment_idx").on(t.environmentId, t.createdAt),
    index("deployments_cluster_status_idx").on(t.clusterId, t.status),
    index("deployments_org_idx").on(t.organizationId),
    // Retention (server/retention) walks the oldest deployments of every environment.
    index("deployments_created_at_idx").on(t.createdAt, t.id),
  ],
);

/**
 * Sequence numbers of events the control plane records itself (queued, cancel requested, lease
 * expired). Engines number theirs from a microsecond clock (~1.7e15), far above this sequence.
 */
export const controlPlaneEventSeq = pgSequence("control_plane_event_seq");

export const deploymentEvents = pgTable(
  "deployment_events",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    deploymentId: uuid("deployment_id")
      .notNull()
      .references(() => deployments.id, { onDelete: "cascade" }),
    seq: bigint("seq", { mode: "number" }).notNull(),
    serviceId: uuid("service_id"),
    step: deploymentStepEnum("step").notNull(),
    status: stepStatusEnum("status").notNull(),
    message: text("message"),
    durationMs: integer("duration_ms"),
    commit: text("commit"),
    /** A clone's commit subject and author, as the engine read them. */
    commitInfo: jsonb("commit_info").$type<CommitInfo>(),
    /** A lifecycle job's run at its environment's start: the variable names it output (never their values). */
    outputKeys: jsonb("output_keys").$type<string[]>(),
    at: timestamp("at", { withTimezone: true }).notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex("deployment_events_seq_key").on(t.deploymentId, t.seq),
    // What a deployment did to each service, which every page's status reads (server/overview/live-status.ts).
    index("deployment_events_service_idx").on(t.deploymentId, t.serviceId),
    // The runs whose outputs an environment still shows (server/variables/job-outputs.ts), which retention keeps.
    index("deployment_events_job_runs_idx")
      .on(t.serviceId, t.at)
      .where(sql`${t.step} = 'run' and ${t.status} = 'succeeded' and ${t.outputKeys} is not null`),
  ],
);

/**
 * Build, deploy and runtime output. `stream` is `deployment:<id>` or `service:<id>`; `seq`
 * increases within a stream, so a reader resumes with "after seq N" and re-sent lines are
 * stored once.
 */
export const logLines = pgTable(
  "log_lines",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    organizationId: uuid("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    stream: text("stream").notNull(),
    seq: bigint("seq", { mode: "number" }).notNull(),
    deploymentId: uuid("deployment_id"),
    serviceId: uuid("service_id"),
    fd: logFdEnum("fd").notNull(),
    text: text("text").notNull(),
    at: timestamp("at", { withTimezone: true }).notNull(),
    /** Where the engine read a runtime line (release and byte offset): one read again after an engine restart is stored once. */
    source: text("source"),
    /** The severity a JSON log line states (engine/protocol/log-level.ts), read once at ingest; null for plain text. */
    level: text("level").$type<LogLevel>(),
  },
  (t) => [
    uniqueIndex("log_lines_stream_seq_key").on(t.stream, t.seq),
    uniqueIndex("log_lines_stream_source_key").on(t.stream, t.source),
    // Retention (server/retention) deletes the oldest runtime lines; build lines go with their deployment.
    index("log_lines_runtime_at_idx")
      .on(t.at)
      .where(sql`${t.stream} like 'service:%'`),
  ],
);
