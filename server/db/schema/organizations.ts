import { sql } from "drizzle-orm";
import { boolean, check, index, integer, pgEnum, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { createdAt, id, updatedAt } from "./columns";

export const roles = ["OWNER", "ADMIN", "DEVELOPER", "VIEWER"] as const;
export type Role = (typeof roles)[number];
export const roleEnum = pgEnum("role", roles);

export const organizations = pgTable("organizations", {
  id: id(),
  name: text("name").notNull(),
  /** The organization's data key, wrapped (encrypted) by the master key. */
  wrappedDataKey: text("wrapped_data_key").notNull(),
  /**
   * Set when an OWNER asked to delete the organization: its environments are being deleted
   * through DELETE deployments, and the row goes when the last of them finishes
   * (server/organizations/organizations.ts).
   */
  deletingAt: timestamp("deleting_at", { withTimezone: true }),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
});

export const users = pgTable(
  "users",
  {
    id: id(),
    email: text("email").notNull(),
    name: text("name").notNull(),
    passwordHash: text("password_hash"),
    /** May change the instance's settings (sign-up): the first admin, made by the first boot. */
    instanceAdmin: boolean("instance_admin").notNull().default(false),
    /**
     * Raised by "sign out everywhere": every session carries the value it signed in with in its
     * stamp (server/auth/session-stamp.ts), so each one signed in before is over.
     */
    sessionGeneration: integer("session_generation").notNull().default(0),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex("users_email_key").on(t.email)],
);

export const memberships = pgTable(
  "memberships",
  {
    organizationId: uuid("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    userId: uuid("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    role: roleEnum("role").notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.userId] }), index("memberships_user_idx").on(t.userId)],
);

/** Machine credentials: the token itself is shown once; only its SHA-256 is kept. */
export const apiTokens = pgTable(
  "api_tokens",
  {
    id: id(),
    organizationId: uuid("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    createdById: uuid("created_by_id").references(() => users.id, { onDelete: "set null" }),
    name: text("name").notNull(),
    role: roleEnum("role").notNull(),
    tokenHash: text("token_hash").notNull(),
    /** The first characters of the token, to tell tokens apart in lists. */
    prefix: text("prefix").notNull(),
    lastUsedAt: timestamp("last_used_at", { withTimezone: true }),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("api_tokens_hash_key").on(t.tokenHash), index("api_tokens_org_idx").on(t.organizationId)],
);

/** An invitation link to join an organization with a role; only the token's hash is kept. */
export const invites = pgTable(
  "invites",
  {
    id: id(),
    organizationId: uuid("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    role: roleEnum("role").notNull(),
    tokenHash: text("token_hash").notNull(),
    createdById: uuid("created_by_id").references(() => users.id, { onDelete: "set null" }),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
    acceptedAt: timestamp("accepted_at", { withTimezone: true }),
    acceptedById: uuid("accepted_by_id").references(() => users.id, { onDelete: "set null" }),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("invites_token_hash_key").on(t.tokenHash), index("invites_org_idx").on(t.organizationId)],
);

export const signupModes = ["INVITE_ONLY", "OPEN"] as const;
export type SignupMode = (typeof signupModes)[number];
export const signupModeEnum = pgEnum("signup_mode", signupModes);

/** The instance's settings: one row at most (none means the defaults). */
export const instanceSettings = pgTable(
  "instance_settings",
  {
    singleton: boolean("singleton").primaryKey().default(true),
    /** Whether anyone may create an account, or only people holding an invitation. */
    signup: signupModeEnum("signup").notNull().default("INVITE_ONLY"),
    updatedById: uuid("updated_by_id").references(() => users.id, { onDelete: "set null" }),
    updatedAt: updatedAt(),
  },
  (t) => [check("instance_settings_singleton", sql`${t.singleton}`)],
);
