import { bigserial, index, jsonb, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { originEnum } from "./deployments";
import { organizations } from "./organizations";

/** Who did what, when, from where, and the change (secrets redacted before it is written). */
export const auditEvents = pgTable(
  "audit_events",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    /**
     * Null for what concerns the instance rather than one organization (a sign-up), and once
     * the organization is deleted: the record of who deleted it outlives it.
     */
    organizationId: uuid("organization_id").references(() => organizations.id, { onDelete: "set null" }),
    actorType: text("actor_type").notNull(),
    actorId: uuid("actor_id"),
    actorLabel: text("actor_label").notNull(),
    origin: originEnum("origin").notNull(),
    action: text("action").notNull(),
    targetType: text("target_type").notNull(),
    targetId: text("target_id"),
    changes: jsonb("changes").$type<Record<string, unknown>>(),
    ip: text("ip"),
    at: timestamp("at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index("audit_events_org_at_idx").on(t.organizationId, t.at),
    // Retention (server/retention) deletes the oldest entries of every organization.
    index("audit_events_at_idx").on(t.at),
  ],
);
