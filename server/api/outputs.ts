import { z } from "zod";
import { deploymentStatus, deploymentSteps, logFds, stepStatuses } from "../../engine/protocol/events";
import { kubernetesImageBuild } from "../../engine/protocol/image-build";
import { jobRun, missedRuns } from "../../engine/protocol/messages";
import {
  applicationConfig,
  containerConfig,
  DEFAULT_STAGE,
  databaseConfig,
  deploymentAction,
  environmentMode,
  jobConfig,
  serviceKind,
} from "../../engine/protocol/snapshot";
import { triggerKinds, triggerOf } from "../deployments/trigger";
import { logLevels } from "../../engine/protocol/log-level";
import { visibleConfig } from "../services/services";
import type { clusters, deploymentEvents, deployments, environments, logLines, projects, services } from "../db/schema";
import { origins, roles, variableScopes } from "../db/schema";

/**
 * Output schemas of the API: what clients (dashboard, CLI, REST users) may rely on, and the
 * mappers from rows. Timestamps are ISO strings. Nothing secret is representable here.
 */
const timestamp = z.string();
const iso = (date: Date | null) => date?.toISOString() ?? null;

export const projectOutput = z.object({ id: z.string(), name: z.string(), createdAt: timestamp });
export const toProject = (row: typeof projects.$inferSelect) => ({ id: row.id, name: row.name, createdAt: row.createdAt.toISOString() });

export const scheduleOutput = z.object({ weekdays: z.array(z.number()), start: z.string(), stop: z.string(), timeZone: z.string() });

export const environmentOutput = z.object({
  id: z.string(),
  projectId: z.string(),
  name: z.string(),
  mode: environmentMode,
  clusterId: z.string(),
  clonedFromId: z.string().nullable(),
  schedule: scheduleOutput.nullable(),
  expiresAt: timestamp.nullable(),
  protected: z.boolean(),
  /** Sleep when idle: the default of its applications and containers that set none; null: never. */
  sleepAfterMinutes: z.number().nullable(),
  /** Set when pull requests clone this environment into previews. */
  previewBlueprint: z.object({ lifetimeSeconds: z.number().nullable() }).nullable(),
  createdAt: timestamp,
});
export const toEnvironment = (row: typeof environments.$inferSelect) => ({
  id: row.id,
  projectId: row.projectId,
  name: row.name,
  mode: row.mode,
  clusterId: row.clusterId,
  clonedFromId: row.clonedFromId,
  schedule: row.schedule,
  expiresAt: iso(row.expiresAt),
  protected: row.protected,
  sleepAfterMinutes: row.sleepAfterMinutes,
  previewBlueprint: row.previewBlueprint ? { lifetimeSeconds: row.previewBlueprint.lifetimeSeconds ?? null } : null,
  createdAt: row.createdAt.toISOString(),
});

export const serviceOutput = z.object({
  id: z.string(),
  environmentId: z.string(),
  name: z.string(),
  kind: serviceKind,
  /** The configuration of the service's kind (registry and database passwords and git credentials show as "[secret]"). */
  config: z.union([jobConfig, applicationConfig, containerConfig, databaseConfig]),
  runtime: z
    .object({
      state: z.string(),
      releaseId: z.string(),
      restarts: z.number(),
      commit: z.string().optional(),
      reportedAt: z.string(),
      /** The last crash restart and why (an exceeded memory limit says so). */
      lastRestart: z.object({ at: z.string(), reason: z.string(), oomKilled: z.boolean().optional() }).optional(),
      /** A JOB's latest run, and a cron job's next one. */
      lastRun: jobRun.optional(),
      nextRunAt: z.string().optional(),
      /** A cron job's latest missed runs, and whether the engine ran it once for them or skipped them. */
      missed: missedRuns.optional(),
    })
    .nullable(),
  createdAt: timestamp,
});
export const toService = (row: typeof services.$inferSelect) => ({
  id: row.id,
  environmentId: row.environmentId,
  name: row.name,
  kind: row.kind,
  config: visibleConfig(row),
  runtime: row.runtime ?? null,
  createdAt: row.createdAt.toISOString(),
});

/** The lifecycle job whose run output a variable (to $SLIPWAY_OUTPUT_FILE). */
export const jobRefOutput = z.object({ serviceId: z.string(), name: z.string() });

export const variableOutput = z.object({
  key: z.string(),
  scope: z.enum(variableScopes),
  targetId: z.string(),
  secret: z.boolean(),
  /** Null for secrets (they are write-only) and for what jobs output (the engine alone keeps those values). */
  value: z.string().nullable(),
  /** Set by this job's run rather than by a user: read-only. Listed at ENVIRONMENT scope, where it applies. */
  job: jobRefOutput.nullable().optional(),
});

export const deploymentOutput = z.object({
  id: z.string(),
  environmentId: z.string(),
  action: deploymentAction,
  status: deploymentStatus,
  statusMessage: z.string().nullable(),
  serviceIds: z.array(z.string()).nullable(),
  origin: z.enum(origins),
  actor: z.string(),
  commits: z.record(z.string(), z.string()),
  /** Per service id: its commit's subject and author, read at clone time. */
  commitDetails: z.record(z.string(), z.object({ subject: z.string(), author: z.string(), authoredAt: z.string().optional() })),
  /** The earlier deployment this one redeploys as it was (a rollback). */
  rollbackOf: z.string().nullable(),
  /** Who or what made it (server/deployments/trigger.ts). */
  trigger: z.object({
    kind: z.enum(triggerKinds),
    by: z.string(),
    via: z.enum(origins),
    fromDeploymentId: z.string().nullable(),
    fromEnvironment: z.string().nullable(),
  }),
  /** The names of the services it acts on, by id, as its snapshot has them: a deleted service keeps its name in the history. */
  serviceNames: z.record(z.string(), z.string()),
  /** Its stages in the order they run, each with its services' ids (one `default` stage for a deployment made before stages). */
  stages: z.array(z.object({ name: z.string(), serviceIds: z.array(z.string()) })),
  attempt: z.number(),
  createdAt: timestamp,
  startedAt: timestamp.nullable(),
  finishedAt: timestamp.nullable(),
});
export const toDeployment = (row: typeof deployments.$inferSelect) => ({
  id: row.id,
  environmentId: row.environmentId,
  action: row.action,
  status: row.status,
  statusMessage: row.statusMessage,
  serviceIds: row.serviceIds,
  origin: row.origin,
  actor: row.actorLabel,
  commits: row.commits,
  commitDetails: row.commitDetails,
  rollbackOf: row.rollbackOf,
  trigger: triggerOf(row),
  serviceNames: Object.fromEntries(row.snapshot.services.map((service) => [service.id, service.name])),
  stages: row.snapshot.stages ?? [{ name: DEFAULT_STAGE, serviceIds: row.snapshot.services.map((service) => service.id) }],
  attempt: row.attempt,
  createdAt: row.createdAt.toISOString(),
  startedAt: iso(row.startedAt),
  finishedAt: iso(row.finishedAt),
});

const change = z.enum(["added", "removed", "changed"]);
/** What a deployment changes per service (server/deployments/changes.ts): keys and paths, never a variable's value or a secret. */
export const deploymentChangesOutput = z.array(
  z.object({
    serviceId: z.string(),
    name: z.string(),
    kind: serviceKind,
    /** The deployment compared against: the last successful DEPLOY of this service before; null for its first. */
    previousDeploymentId: z.string().nullable(),
    /** The commit range (old..new) with the provider's compare page when known; null for kinds not built from git. */
    commits: z.object({ from: z.string().nullable(), to: z.string().nullable(), compareUrl: z.string().nullable() }).nullable(),
    /** Configuration fields by dotted path; secret material (credentials, passwords) says only that it changed. */
    config: z.array(z.object({ path: z.string(), change, secret: z.boolean(), from: z.string().nullable(), to: z.string().nullable() })),
    variables: z.array(z.object({ key: z.string(), change, secret: z.boolean() })),
  }),
);

export const deploymentEventOutput = z.object({
  id: z.number(),
  serviceId: z.string().nullable(),
  step: z.enum(deploymentSteps),
  status: z.enum(stepStatuses),
  message: z.string().nullable(),
  durationMs: z.number().nullable(),
  commit: z.string().nullable(),
  at: timestamp,
});
export const toDeploymentEvent = (row: typeof deploymentEvents.$inferSelect) => ({
  id: row.id,
  serviceId: row.serviceId,
  step: row.step,
  status: row.status,
  message: row.message,
  durationMs: row.durationMs,
  commit: row.commit,
  at: row.at.toISOString(),
});

export const logLineOutput = z.object({
  seq: z.number(),
  fd: z.enum(logFds),
  text: z.string(),
  at: timestamp,
  deploymentId: z.string().nullable(),
  serviceId: z.string().nullable(),
  level: z.enum(logLevels).nullable(),
});
export const toLogLine = (row: typeof logLines.$inferSelect) => ({
  seq: row.seq,
  fd: row.fd,
  text: row.text,
  at: row.at.toISOString(),
  deploymentId: row.deploymentId,
  serviceId: row.serviceId,
  level: row.level,
});

export const clusterOutput = z.object({
  id: z.string(),
  name: z.string(),
  kind: z.string(),
  domainSuffix: z.string(),
  connected: z.boolean(),
  lastHeartbeatAt: timestamp.nullable(),
  engineVersion: z.string().nullable(),
  capabilities: z.record(z.string(), z.unknown()),
  tokenRevoked: z.boolean(),
  /** Services may be built from `file://` URLs and paths on the engine's host. */
  allowLocalRepositories: z.boolean(),
  trusted: z.boolean(),
  isolateLoopback: z.boolean(),
  /** A `kubernetes` cluster's: where images of services from git are built (null on the other kinds). */
  kubernetesBuild: kubernetesImageBuild.nullable(),
});
export const toCluster = (row: typeof clusters.$inferSelect, now: Date, heartbeatWindowMs: number) => ({
  id: row.id,
  name: row.name,
  kind: row.kind,
  domainSuffix: row.domainSuffix,
  connected: !!row.lastHeartbeatAt && now.getTime() - row.lastHeartbeatAt.getTime() < heartbeatWindowMs && !!row.engineTokenHash,
  lastHeartbeatAt: iso(row.lastHeartbeatAt),
  engineVersion: row.engineVersion,
  capabilities: row.capabilities,
  tokenRevoked: !row.engineTokenHash,
  allowLocalRepositories: row.allowLocalRepositories,
  trusted: row.trusted,
  isolateLoopback: row.isolateLoopback,
  kubernetesBuild: row.kind === "kubernetes" ? (row.kubernetesBuild ?? { location: "cluster" as const }) : null,
});

export const roleSchema = z.enum(roles);
