import { bigserial, boolean, index, integer, jsonb, pgEnum, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { createdAt, id, updatedAt } from "./columns";
import { organizations } from "./organizations";
import { environments, projects } from "./projects";

export const notificationChannels = ["slack", "discord", "email", "webhook"] as const;
export type NotificationChannel = (typeof notificationChannels)[number];
export const notificationChannelEnum = pgEnum("notification_channel", notificationChannels);

/**
 * A notification rule (issue 16, part 4): when one of `events` happens in the project (or only in
 * `environmentId` when set), a delivery is sent to the channel. The channel's settings (URLs,
 * the webhook signing secret, SMTP credentials) are one JSON document sealed with the
 * organization's data key; `target` is what the API shows of them (a host, masked).
 */
export const notificationRules = pgTable(
  "notification_rules",
  {
    id: id(),
    organizationId: uuid("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    projectId: uuid("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    environmentId: uuid("environment_id").references(() => environments.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    events: text("events").array().notNull(),
    channel: notificationChannelEnum("channel").notNull(),
    encryptedConfig: text("encrypted_config").notNull(),
    target: text("target").notNull(),
    enabled: boolean("enabled").notNull().default(true),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("notification_rules_project_idx").on(t.projectId), index("notification_rules_org_idx").on(t.organizationId)],
);

/** PENDING: being sent (retries included). DELIVERED: a receiver accepted it. FAILED: every attempt failed. */
export const notificationDeliveryStatuses = ["PENDING", "DELIVERED", "FAILED"] as const;
export type NotificationDeliveryStatus = (typeof notificationDeliveryStatuses)[number];
export const notificationDeliveryStatusEnum = pgEnum("notification_delivery_status", notificationDeliveryStatuses);

/** One event sent to one rule's channel; stored with the job that sends it, in the transaction of the change. */
export const notificationDeliveries = pgTable(
  "notification_deliveries",
  {
    id: id(),
    organizationId: uuid("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    ruleId: uuid("rule_id")
      .notNull()
      .references(() => notificationRules.id, { onDelete: "cascade" }),
    event: text("event").notNull(),
    /** The event as sent (the generic webhook's body; the other channels render it). */
    payload: jsonb("payload").$type<Record<string, unknown>>().notNull(),
    status: notificationDeliveryStatusEnum("status").notNull().default("PENDING"),
    attempts: integer("attempts").notNull().default(0),
    createdAt: createdAt(),
    deliveredAt: timestamp("delivered_at", { withTimezone: true }),
  },
  (t) => [index("notification_deliveries_rule_idx").on(t.ruleId, t.createdAt)],
);

/** Each try of a delivery: the receiver's answer (status, a bounded excerpt of its body) or the error. */
export const notificationAttempts = pgTable(
  "notification_attempts",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    deliveryId: uuid("delivery_id")
      .notNull()
      .references(() => notificationDeliveries.id, { onDelete: "cascade" }),
    attempt: integer("attempt").notNull(),
    responseStatus: integer("response_status"),
    responseExcerpt: text("response_excerpt"),
    durationMs: integer("duration_ms").notNull(),
    error: text("error"),
    at: timestamp("at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index("notification_attempts_delivery_idx").on(t.deliveryId)],
);
