import { integer, index, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { clusters } from "./clusters";
import { originEnum } from "./deployments";
import { organizations } from "./organizations";
import { services } from "./projects";

/**
 * Shell sessions opened in services' releases: who, where, when, and how each ended. Never
 * their contents. The row makes closing exactly-once across web processes: whichever sees the
 * end first (the engine's `shell:exit`, or the client's disconnect) closes it and writes the
 * `shell.close` audit event.
 */
export const shellSessions = pgTable(
  "shell_sessions",
  {
    id: uuid("id").primaryKey(),
    organizationId: uuid("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    serviceId: uuid("service_id")
      .notNull()
      .references(() => services.id, { onDelete: "cascade" }),
    clusterId: uuid("cluster_id")
      .notNull()
      .references(() => clusters.id, { onDelete: "cascade" }),
    actorType: text("actor_type").notNull(),
    actorId: uuid("actor_id"),
    actorLabel: text("actor_label").notNull(),
    origin: originEnum("origin").notNull(),
    ip: text("ip"),
    /** `interactive` (a terminal) or `command` (`slipway shell … -- cmd`); the command itself is not recorded. */
    mode: text("mode").notNull(),
    openedAt: timestamp("opened_at", { withTimezone: true }).notNull().defaultNow(),
    closedAt: timestamp("closed_at", { withTimezone: true }),
    exitCode: integer("exit_code"),
    closeReason: text("close_reason"),
  },
  (t) => [index("shell_sessions_cluster_open_idx").on(t.clusterId, t.closedAt), index("shell_sessions_org_idx").on(t.organizationId)],
);
