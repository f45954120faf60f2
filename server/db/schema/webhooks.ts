import { sql } from "drizzle-orm";
import { bigserial, index, integer, jsonb, pgEnum, pgTable, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { createdAt, id, updatedAt } from "./columns";
import { organizations } from "./organizations";
import { environments } from "./projects";

export const gitProviders = ["github", "gitlab", "bitbucket", "generic"] as const;
export type GitProvider = (typeof gitProviders)[number];
export const gitProviderEnum = pgEnum("git_provider", gitProviders);

/**
 * PENDING: stored, waiting for the process_webhooks task. PROCESSED: acted on (outcome says
 * what was deployed or skipped). IGNORED: an event Slipway does not act on. FAILED: the payload
 * could not be understood or acting on it failed (error says why); redeliver to try again.
 */
export const deliveryStatuses = ["PENDING", "PROCESSED", "IGNORED", "FAILED"] as const;
export type DeliveryStatus = (typeof deliveryStatuses)[number];
export const deliveryStatusEnum = pgEnum("webhook_delivery_status", deliveryStatuses);

/**
 * An organization's link to a git provider: one webhook endpoint (`/api/hooks/<id>`) that serves
 * any repository of that provider; services match deliveries by repository URL. The webhook
 * secret and the optional API token (for commit statuses and comments) are sealed with the
 * organization's data key.
 */
export const gitConnections = pgTable(
  "git_connections",
  {
    id: id(),
    organizationId: uuid("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    provider: gitProviderEnum("provider").notNull(),
    name: text("name").notNull(),
    /** The provider's REST API, for statuses and comments; the provider's public API when null. */
    apiBaseUrl: text("api_base_url"),
    encryptedSecret: text("encrypted_secret").notNull(),
    encryptedApiToken: text("encrypted_api_token"),
    /** Deliveries refused for a bad or missing signature: counted, never stored. */
    rejectedDeliveries: integer("rejected_deliveries").notNull().default(0),
    lastRejectedAt: timestamp("last_rejected_at", { withTimezone: true }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex("git_connections_org_name_key").on(t.organizationId, t.name), index("git_connections_org_idx").on(t.organizationId)],
);

/**
 * Every authenticated delivery, stored before it is answered 202, once per provider delivery id.
 * `payload` is the request body as received (UTF-8 text, so the signature can be checked again
 * and nothing the provider sent is reinterpreted); `seq` orders processing.
 */
export const webhookDeliveries = pgTable(
  "webhook_deliveries",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    seq: bigserial("seq", { mode: "number" }).notNull(),
    /**
     * The connection's organization, copied for tenant filters. No foreign key of its own: the
     * connection's already cascades an organization's deletion here, and a second check on every
     * inserted row cost the intake's batch insert 12% of its time.
     */
    organizationId: uuid("organization_id").notNull(),
    connectionId: uuid("connection_id")
      .notNull()
      .references(() => gitConnections.id, { onDelete: "cascade" }),
    /** The provider's id of the delivery (X-GitHub-Delivery, Idempotency-Key, X-Request-UUID, X-Slipway-Delivery). */
    deliveryId: text("delivery_id").notNull(),
    /** The provider's event name (`push`, `Merge Request Hook`, `pullrequest:created` …). */
    event: text("event").notNull(),
    /**
     * The repository the payload names, normalised (server/git/repository-url.ts): lets the worker
     * settle deliveries for repositories no service follows without reading their payloads.
     */
    repository: text("repository"),
    /** Request headers, secrets removed. */
    headers: jsonb("headers").$type<Record<string, string>>().notNull(),
    /** Stored uncompressed, in its row while it fits (drizzle/0029): compressing cost the intake a third of its insert. */
    payload: text("payload").notNull(),
    status: deliveryStatusEnum("status").notNull().default("PENDING"),
    /** What processing did: deployments requested, previews created, services skipped and why. */
    outcome: jsonb("outcome").$type<Record<string, unknown>>(),
    error: text("error"),
    attempts: integer("attempts").notNull().default(0),
    receivedAt: timestamp("received_at", { withTimezone: true }).notNull().defaultNow(),
    processedAt: timestamp("processed_at", { withTimezone: true }),
  },
  (t) => [
    uniqueIndex("webhook_deliveries_connection_delivery_key").on(t.connectionId, t.deliveryId),
    index("webhook_deliveries_connection_seq_idx").on(t.connectionId, t.seq),
    index("webhook_deliveries_pending_idx")
      .on(t.seq)
      .where(sql`${t.status} = 'PENDING'`),
    // Retention (server/retention) deletes the oldest settled deliveries; pending ones wait for the worker.
    index("webhook_deliveries_settled_received_idx")
      .on(t.receivedAt)
      .where(sql`${t.status} <> 'PENDING'`),
  ],
);

/**
 * The pushes of a followed branch, as received: what orders a push redelivered late against the
 * one a service was last deployed from (server/webhooks/push-order.ts). `seq` is the order
 * received; `before` → `after` links a push to the one that moved the branch to its `before`, so
 * the pushes behind a deployed one can be told however far back. Bounded: each branch keeps its
 * newest pushes and each service's last deployed one (PUSHES_KEPT_PER_BRANCH), and retention
 * deletes those older than the webhook deliveries' period.
 */
export const webhookPushes = pgTable(
  "webhook_pushes",
  {
    seq: bigserial("seq", { mode: "number" }).primaryKey(),
    connectionId: uuid("connection_id")
      .notNull()
      .references(() => gitConnections.id, { onDelete: "cascade" }),
    /** Normalised repository URL (server/git/repository-url.ts). */
    repository: text("repository").notNull(),
    branch: text("branch").notNull(),
    /** The commit the branch was at before the push; null when the push created it or the provider does not say. */
    before: text("before"),
    after: text("after").notNull(),
    /** When the push happened, where the provider says (GitHub). */
    pushedAt: timestamp("pushed_at", { withTimezone: true }),
    /** The services whose deployment the push requested (or was merged into a waiting one). */
    serviceIds: uuid("service_ids")
      .array()
      .notNull()
      .default(sql`'{}'::uuid[]`),
    createdAt: createdAt(),
  },
  (t) => [
    index("webhook_pushes_branch_seq_idx").on(t.connectionId, t.repository, t.branch, t.seq),
    // Retention (server/retention) deletes the oldest.
    index("webhook_pushes_created_idx").on(t.createdAt),
  ],
);

/** What the provider API needs to address a repository: GitHub/Bitbucket `owner/name`, GitLab's project id. */
export type ProviderRepository = { fullName?: string; projectId?: number };

/**
 * A preview environment: the clone of a blueprint environment for one pull (merge) request,
 * deployed at the request's head commit and deleted when it closes or idles past its lifetime.
 */
export const gitPreviews = pgTable(
  "git_previews",
  {
    id: id(),
    organizationId: uuid("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    connectionId: uuid("connection_id").references(() => gitConnections.id, { onDelete: "set null" }),
    blueprintEnvironmentId: uuid("blueprint_environment_id")
      .notNull()
      .references(() => environments.id, { onDelete: "cascade" }),
    environmentId: uuid("environment_id")
      .notNull()
      .references(() => environments.id, { onDelete: "cascade" }),
    /** Normalised repository URL (server/git/repository-url.ts). */
    repository: text("repository").notNull(),
    providerRepository: jsonb("provider_repository").$type<ProviderRepository>().notNull().default({}),
    number: integer("number").notNull(),
    headBranch: text("head_branch").notNull(),
    headCommit: text("head_commit").notNull(),
    /**
     * The base branch the preview was last deployed for, with `headBranch` and `headCommit`: an
     * update of the pull request that changes none of them redeploys nothing. Null for previews
     * recorded before it was kept (drizzle/0032).
     */
    baseBranch: text("base_branch"),
    /** The comment posted on the pull request, edited on later deployments. */
    commentId: text("comment_id"),
    closedAt: timestamp("closed_at", { withTimezone: true }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("git_previews_environment_key").on(t.environmentId),
    uniqueIndex("git_previews_open_key")
      .on(t.blueprintEnvironmentId, t.repository, t.number)
      .where(sql`${t.closedAt} is null`),
    index("git_previews_org_idx").on(t.organizationId),
  ],
);
