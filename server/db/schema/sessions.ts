import { index, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { users } from "./organizations";

/**
 * Browser sessions that signed out before their cookie expired (server/auth/sessions.ts). A
 * session is an encrypted JWT cookie with no row of its own, so a copy of the cookie would
 * otherwise keep working after its owner signed out: every read of a session refuses one whose
 * id is here. A row is needed only while the cookie it names could still be presented: retention
 * (server/retention) deletes it after `expires_at`.
 */
export const endedSessions = pgTable(
  "ended_sessions",
  {
    /** The session's `sid` (a UUID drawn at sign-in; the `jti` of a cookie issued before sessions had one). */
    sessionId: text("session_id").primaryKey(),
    userId: uuid("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    endedAt: timestamp("ended_at", { withTimezone: true }).notNull().defaultNow(),
    /** When the signed-out cookie expires: no copy of it is accepted after this anyway. */
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
  },
  (t) => [index("ended_sessions_expires_at_idx").on(t.expiresAt)],
);
