import { bigint, boolean, jsonb, pgEnum, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import type { KubernetesImageBuild } from "../../../engine/protocol/image-build";
import { createdAt, id, updatedAt } from "./columns";
import { organizations } from "./organizations";

export const clusterKinds = ["local", "docker", "kubernetes"] as const;
export const clusterKindEnum = pgEnum("cluster_kind", clusterKinds);

export type ClusterCapabilities = {
  runtime?: string;
  serviceKinds?: string[];
  databases?: string[];
  routerPort?: number;
};

export const clusters = pgTable(
  "clusters",
  {
    id: id(),
    organizationId: uuid("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    kind: clusterKindEnum("kind").notNull(),
    /** Services are reachable at `<service>-<environment>-<project>.<domainSuffix>`. */
    domainSuffix: text("domain_suffix").notNull().default("localhost"),
    /** SHA-256 of the engine token; null once revoked. */
    engineTokenHash: text("engine_token_hash"),
    lastHeartbeatAt: timestamp("last_heartbeat_at", { withTimezone: true }),
    engineVersion: text("engine_version"),
    /** The boot id of the engine process that connected last: another one means the engine restarted and lost what it was running. */
    engineBootId: uuid("engine_boot_id"),
    capabilities: jsonb("capabilities").$type<ClusterCapabilities>().notNull().default({}),
    /**
     * Whether services on this cluster may be built from repositories on its engine's host
     * (`file://` URLs and absolute paths). Set by an ADMIN, audited; off unless allowed (the
     * `local` cluster of `npm start` allows it). The engine has its own say (issue 13).
     */
    allowLocalRepositories: boolean("allow_local_repositories").notNull().default(false),
    /**
     * An ADMIN accepted that apps on this cluster may read its engine's files: where the engine's
     * host cannot sandbox apps, it runs them anyway instead of refusing (issue 13's fail-closed switch).
     */
    trusted: boolean("trusted").notNull().default(false),
    /** Its services cannot open connections to the host's loopback services but their environment's databases. */
    isolateLoopback: boolean("isolate_loopback").notNull().default(false),
    /** A `kubernetes` cluster's: where images of services from git are built (issue 18, item 4); null: in the cluster, by a build Job. */
    kubernetesBuild: jsonb("kubernetes_build").$type<KubernetesImageBuild>(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex("clusters_org_name_key").on(t.organizationId, t.name), uniqueIndex("clusters_engine_token_key").on(t.engineTokenHash)],
);

/**
 * Files an engine keeps for a service that no longer exists (deleted while its engine was away,
 * or a DELETE that failed half way): found from the engine's inventory, removed by the engine
 * once the reaper asks (`removeRequestedAt`), forgotten when the engine stops reporting them.
 */
export const engineLeftovers = pgTable(
  "engine_leftovers",
  {
    clusterId: uuid("cluster_id")
      .notNull()
      .references(() => clusters.id, { onDelete: "cascade" }),
    /** The deleted service's id (its directory's name on the engine's host). */
    serviceId: uuid("service_id").notNull(),
    bytes: bigint("bytes", { mode: "number" }).notNull(),
    firstReportedAt: timestamp("first_reported_at", { withTimezone: true }).notNull(),
    reportedAt: timestamp("reported_at", { withTimezone: true }).notNull(),
    removeRequestedAt: timestamp("remove_requested_at", { withTimezone: true }),
  },
  (t) => [primaryKey({ columns: [t.clusterId, t.serviceId] })],
);
