import { bigint, integer, pgTable, varchar } from "drizzle-orm/pg-core";

/**
 * The counters of rate-limiter-flexible's RateLimiterPostgres (server/auth/rate-limits.ts): failed
 * sign-ins and bad API tokens, per account and per address, shared by every web process. The
 * library reads and writes these columns by name, so the table keeps its layout (no timestamps:
 * `expire` is milliseconds since the epoch) and it deletes expired rows itself.
 */
export const rateLimits = pgTable("rate_limits", {
  /** `<limit>:<address>` or `<limit>:<SHA-256 of the account's email>`. */
  key: varchar("key", { length: 255 }).primaryKey(),
  points: integer("points").notNull().default(0),
  expire: bigint("expire", { mode: "number" }),
});
