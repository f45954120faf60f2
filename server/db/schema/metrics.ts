import { bigint, index, integer, pgTable, real, smallint, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { services } from "./projects";

/**
 * Metrics of services' live releases. `resolution` 0: raw samples as engines ship them (every
 * few seconds, kept 24 hours); 60: one-minute averages rolled up from them by the
 * `downsample_metrics` task (kept SLIPWAY_RETENTION_METRICS_DAYS, 30 by default). Charts read raw rows for short windows and
 * roll-ups for long ones.
 */
export const metricSamples = pgTable(
  "metric_samples",
  {
    serviceId: uuid("service_id")
      .notNull()
      .references(() => services.id, { onDelete: "cascade" }),
    resolution: smallint("resolution").notNull().default(0),
    at: timestamp("at", { withTimezone: true }).notNull(),
    cpuPercent: real("cpu_percent").notNull(),
    memoryBytes: bigint("memory_bytes", { mode: "number" }).notNull(),
    memoryLimitBytes: bigint("memory_limit_bytes", { mode: "number" }),
    restarts: integer("restarts").notNull(),
    requestsPerSecond: real("requests_per_second").notNull(),
    errorsPerSecond: real("errors_per_second").notNull(),
    p50Ms: real("p50_ms"),
    p95Ms: real("p95_ms"),
    p99Ms: real("p99_ms"),
  },
  (t) => [
    uniqueIndex("metric_samples_service_resolution_at_key").on(t.serviceId, t.resolution, t.at),
    index("metric_samples_resolution_at_idx").on(t.resolution, t.at),
  ],
);
