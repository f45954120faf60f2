import { boolean, index, jsonb, pgEnum, pgTable, text, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { environmentModes, serviceKinds, type ApplicationConfig } from "../../../engine/protocol/snapshot";
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
  state: "starting" | "running" | "crashed" | "stopped";
  releaseId: string;
  restarts: number;
  commit?: string;
  reportedAt: string;
};

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
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex("environments_project_name_key").on(t.projectId, t.name), index("environments_org_idx").on(t.organizationId)],
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
    /** Typed by the kind's schema in engine/protocol/snapshot.ts; validated on every write. */
    config: jsonb("config").$type<ApplicationConfig>().notNull(),
    /** The engine's last report of the running release (heartbeats): state, restarts, commit. */
    runtime: jsonb("runtime").$type<ServiceRuntime>(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex("services_environment_name_key").on(t.environmentId, t.name), index("services_org_idx").on(t.organizationId)],
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
  (t) => [uniqueIndex("variables_target_key_key").on(t.scope, t.targetId, t.key), index("variables_org_idx").on(t.organizationId)],
);
