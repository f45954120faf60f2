import { boolean, index, integer, jsonb, pgEnum, pgTable, text, timestamp, uniqueIndex, uuid, type AnyPgColumn } from "drizzle-orm/pg-core";
import {
  environmentModes,
  serviceKinds,
  type ApplicationConfig,
  type ContainerConfig,
  type DatabaseConfig,
  type JobConfig,
} from "../../../engine/protocol/snapshot";
import type { JobRun, MissedRuns } from "../../../engine/protocol/messages";
import { clusters } from "./clusters";
import { createdAt, id, updatedAt } from "./columns";
import { organizations } from "./organizations";

export const environmentModeEnum = pgEnum("environment_mode", environmentModes);
export const serviceKindEnum = pgEnum("service_kind", serviceKinds);
export const variableScopes = ["PROJECT", "ENVIRONMENT", "SERVICE"] as const;
export type VariableScope = (typeof variableScopes)[number];
export const variableScopeEnum = pgEnum("variable_scope", variableScopes);

const organizationId = () =>
  uuid("organization_id")
    .notNull()
    .references(() => organizations.id, { onDelete: "cascade" });

export type ServiceRuntime = {
  state: "starting" | "running" | "crashed" | "stopped" | "idle" | "sleeping";
  releaseId: string;
  restarts: number;
  commit?: string;
  reportedAt: string;
  /** The last crash restart and its reason ("was killed for exceeding its memory limit of 64 MiB"). */
  lastRestart?: { at: string; reason: string; oomKilled?: boolean };
  /** A JOB's latest run and a cron job's next one. */
  lastRun?: JobRun;
  nextRunAt?: string;
  /** A cron job's latest missed runs (scheduled while no engine ran it) and what the engine did about them. */
  missed?: MissedRuns;
};

/**
 * When an environment starts and stops by itself: on these ISO weekdays (1 = Monday), at these
 * local times in this IANA time zone. Applied at the boundaries only, so a manual start at
 * night is not undone until the next stop time.
 */
export type EnvironmentSchedule = { weekdays: number[]; start: string; stop: string; timeZone: string };

/**
 * An environment that is a blueprint for previews: each pull request against the branch its
 * services follow gets a clone, deleted when the request closes or after this many seconds
 * without a new commit (null: only when it closes).
 */
export type PreviewBlueprint = { lifetimeSeconds: number | null };

/**
 * When a push deploys a service (server/webhooks/triggers.ts): pushes to the branch it follows
 * when `autoDeploy`, filtered by globs over the changed files (`includePaths` empty: any file),
 * and tag pushes when `followTags`. Null on the row means the defaults.
 */
export type GitTriggers = { autoDeploy: boolean; includePaths: string[]; excludePaths: string[]; followTags: boolean };

export const projects = pgTable(
  "projects",
  {
    id: id(),
    organizationId: organizationId(),
    name: text("name").notNull(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex("projects_org_name_key").on(t.organizationId, t.name)],
);

export const environments = pgTable(
  "environments",
  {
    id: id(),
    organizationId: organizationId(),
    projectId: uuid("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    mode: environmentModeEnum("mode").notNull().default("DEVELOPMENT"),
    clusterId: uuid("cluster_id")
      .notNull()
      .references(() => clusters.id, { onDelete: "restrict" }),
    /** The environment this one was cloned from, for the audit trail and the dashboard. */
    clonedFromId: uuid("cloned_from_id").references((): AnyPgColumn => environments.id, { onDelete: "set null" }),
    schedule: jsonb("schedule").$type<EnvironmentSchedule>(),
    /** Schedule boundaries up to this instant have been acted on. */
    scheduleCheckedAt: timestamp("schedule_checked_at", { withTimezone: true }),
    /** After this instant the reaper deletes the environment, unless it is protected. */
    expiresAt: timestamp("expires_at", { withTimezone: true }),
    protected: boolean("protected").notNull().default(false),
    /** Sleep when idle (issue 16): the default of its applications and containers that set none; null: they never sleep. */
    sleepAfterMinutes: integer("sleep_after_minutes"),
    previewBlueprint: jsonb("preview_blueprint").$type<PreviewBlueprint>(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("environments_project_name_key").on(t.projectId, t.name),
    index("environments_org_idx").on(t.organizationId),
    index("environments_expires_idx").on(t.expiresAt),
  ],
);

/**
 * A project's rules for new environments: the first matching name pattern (by priority, highest
 * first) gives the environment its mode, cluster, schedule and lifetime unless the request
 * says otherwise.
 */
export const environmentRules = pgTable(
  "environment_rules",
  {
    id: id(),
    organizationId: organizationId(),
    projectId: uuid("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    /** Environment names it applies to: `*` matches any run of characters (`pr-*`). */
    namePattern: text("name_pattern").notNull(),
    priority: integer("priority").notNull().default(0),
    mode: environmentModeEnum("mode"),
    clusterId: uuid("cluster_id").references(() => clusters.id, { onDelete: "set null" }),
    schedule: jsonb("schedule").$type<EnvironmentSchedule>(),
    lifetimeSeconds: integer("lifetime_seconds"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("environment_rules_project_idx").on(t.projectId)],
);

/**
 * An environment's deployment stages (issue 16): ordered groups of services; a deployment runs a
 * stage once the one before it is done. Services in none form the implicit first stage,
 * `default` (server/environments/stages.ts).
 */
export const deploymentStages = pgTable(
  "deployment_stages",
  {
    id: id(),
    organizationId: organizationId(),
    environmentId: uuid("environment_id")
      .notNull()
      .references(() => environments.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    /** Its place in the environment's order, from 1 (the implicit `default` stage comes before all). */
    position: integer("position").notNull(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex("deployment_stages_environment_name_key").on(t.environmentId, t.name)],
);

export const services = pgTable(
  "services",
  {
    id: id(),
    organizationId: organizationId(),
    environmentId: uuid("environment_id")
      .notNull()
      .references(() => environments.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    kind: serviceKindEnum("kind").notNull(),
    /**
     * Typed by the kind's schema in engine/protocol/snapshot.ts; validated on every write. A
     * CONTAINER's registry password and a DATABASE's password are stored sealed
     * (server/services/registry-credentials.ts, databases.ts).
     */
    config: jsonb("config").$type<ApplicationConfig | ContainerConfig | DatabaseConfig | JobConfig>().notNull(),
    /** The engine's last report of the running release (heartbeats): state, restarts, commit. */
    runtime: jsonb("runtime").$type<ServiceRuntime>(),
    gitTriggers: jsonb("git_triggers").$type<GitTriggers>(),
    /** The deployment stage it belongs to; null: the implicit first stage, `default`. */
    stageId: uuid("stage_id").references(() => deploymentStages.id, { onDelete: "set null" }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex("services_environment_name_key").on(t.environmentId, t.name), index("services_org_idx").on(t.organizationId)],
);

/**
 * The hostname each service is generated on its cluster's router (server/services/domains.ts):
 * `label` is `<service>-<environment>-<project>`, the part before the cluster's domain suffix.
 * Two services of a cluster could otherwise share one (`api-v2` in `prod` and `api` in `v2-prod`
 * of one project), and the router would send one's requests to the other. The unique index is
 * what settles two creations at once; a service whose label another one already had when this
 * table was made (migration 0031) has no row: it keeps its hostname, and new services are still
 * refused it, as the check reads the names themselves.
 */
export const serviceHostnames = pgTable(
  "service_hostnames",
  {
    serviceId: uuid("service_id")
      .primaryKey()
      .references(() => services.id, { onDelete: "cascade" }),
    clusterId: uuid("cluster_id")
      .notNull()
      .references(() => clusters.id, { onDelete: "cascade" }),
    label: text("label").notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("service_hostnames_cluster_label_key").on(t.clusterId, t.label)],
);

/**
 * A key/value at one scope; the narrowest scope wins when a service's variables are resolved.
 * Every value is encrypted at rest with the organization's data key; `secret` ones are also
 * write-only through the API.
 */
export const variables = pgTable(
  "variables",
  {
    id: id(),
    organizationId: organizationId(),
    scope: variableScopeEnum("scope").notNull(),
    /** The project, environment or service the variable belongs to, per its scope. */
    targetId: uuid("target_id").notNull(),
    key: text("key").notNull(),
    encryptedValue: text("encrypted_value").notNull(),
    secret: boolean("secret").notNull().default(false),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  // The target leads: deployments, clones and the effective-variables view look up by target alone.
  (t) => [uniqueIndex("variables_target_key_key").on(t.targetId, t.scope, t.key), index("variables_org_idx").on(t.organizationId)],
);
