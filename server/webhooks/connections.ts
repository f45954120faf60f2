import { randomBytes, randomUUID } from "node:crypto";
import { and, asc, eq, sql } from "drizzle-orm";
import { z } from "zod";
import { recordAudit } from "../audit/record-audit";
import type { DomainContext, Services } from "../context";
import type { Executor } from "../db/client";
import { conflictOnDuplicate } from "../db/errors";
import { gitConnections, gitProviders, type GitProvider } from "../db/schema";
import { AppError, notFound } from "../errors";
import { cipherFor } from "../secrets/organization-cipher";

export const connectInput = z.object({
  provider: z.enum(gitProviders),
  name: z
    .string()
    .min(1)
    .max(60)
    .regex(/^[A-Za-z0-9][A-Za-z0-9 ._-]*$/, "use letters, digits, spaces, dots, hyphens and underscores"),
  /** The provider's REST API (a GitHub Enterprise or self-managed GitLab); the public one by default. */
  apiBaseUrl: z.string().url().max(500).optional(),
  /** Lets Slipway post commit statuses and pull request comments; without it, it only listens. */
  apiToken: z.string().min(1).max(4096).optional(),
});

export const updateConnectionInput = z.object({
  connectionId: z.string().uuid(),
  apiBaseUrl: z.string().url().max(500).nullable().optional(),
  apiToken: z.string().min(1).max(4096).nullable().optional(),
});

type ConnectionRow = typeof gitConnections.$inferSelect;

/** Authenticated data of the sealed values: a ciphertext cannot be moved to another connection or field. */
const secretContext = (connectionId: string) => `git_connection:${connectionId}:secret`;
const tokenContext = (connectionId: string) => `git_connection:${connectionId}:api_token`;

/** 32 random bytes, hex: accepted by every provider's secret field. */
const newSecret = () => randomBytes(32).toString("hex");

export function webhookUrl(publicUrl: string, connectionId: string): string {
  return `${publicUrl.replace(/\/+$/, "")}/api/hooks/${connectionId}`;
}

/** What the API shows of a connection: never the secret or the token, only whether a token is set. */
export function describeConnection(services: Pick<Services, "publicUrl">, row: ConnectionRow) {
  return {
    id: row.id,
    provider: row.provider,
    name: row.name,
    apiBaseUrl: row.apiBaseUrl,
    hasApiToken: row.encryptedApiToken !== null,
    webhookUrl: webhookUrl(services.publicUrl, row.id),
    rejectedDeliveries: row.rejectedDeliveries,
    lastRejectedAt: row.lastRejectedAt?.toISOString() ?? null,
    createdAt: row.createdAt.toISOString(),
  };
}

/** Connects a provider; the webhook secret is returned here and by rotateSecret only. */
export async function connectProvider(ctx: DomainContext, input: z.infer<typeof connectInput>) {
  const cipher = await cipherFor(ctx.db, ctx.keyring, ctx.actor.organizationId);
  const id = randomUUID();
  const secret = newSecret();
  return ctx.db.transaction(async (tx) => {
    const [row] = await conflictOnDuplicate(`Git connection "${input.name}"`, () =>
      tx
        .insert(gitConnections)
        .values({
          id,
          organizationId: ctx.actor.organizationId,
          provider: input.provider,
          name: input.name,
          apiBaseUrl: input.apiBaseUrl ?? null,
          encryptedSecret: cipher.encrypt(secret, secretContext(id)),
          encryptedApiToken: input.apiToken ? cipher.encrypt(input.apiToken, tokenContext(id)) : null,
        })
        .returning(),
    );
    await recordAudit(tx, ctx.actor, {
      action: "git_connection.create",
      targetType: "git_connection",
      targetId: id,
      changes: { provider: input.provider, name: input.name, apiBaseUrl: input.apiBaseUrl ?? null, apiToken: input.apiToken ? "[secret]" : null },
    });
    return { connection: row!, secret };
  });
}

export async function listConnections(ctx: DomainContext) {
  return ctx.db.select().from(gitConnections).where(eq(gitConnections.organizationId, ctx.actor.organizationId)).orderBy(asc(gitConnections.name));
}

export async function getConnection(ctx: DomainContext, connectionId: string) {
  const [row] = await ctx.db
    .select()
    .from(gitConnections)
    .where(and(eq(gitConnections.id, connectionId), eq(gitConnections.organizationId, ctx.actor.organizationId)));
  if (!row) throw notFound("Git connection");
  return row;
}

/**
 * Every web process caches connections briefly for the intake; a rotated secret or a deleted
 * connection is announced on this channel so that they all forget it at once.
 */
export const CONNECTION_CHANNEL = "slipway_git_connection";

const announceChange = (db: Executor, connectionId: string) => db.execute(sql`select pg_notify(${CONNECTION_CHANNEL}, ${connectionId})`);

/** A new webhook secret; the old one stops working as soon as every web process hears of it. */
export async function rotateSecret(ctx: DomainContext, connectionId: string) {
  const existing = await getConnection(ctx, connectionId);
  const cipher = await cipherFor(ctx.db, ctx.keyring, ctx.actor.organizationId);
  const secret = newSecret();
  return ctx.db.transaction(async (tx) => {
    const [row] = await tx
      .update(gitConnections)
      .set({ encryptedSecret: cipher.encrypt(secret, secretContext(existing.id)) })
      .where(eq(gitConnections.id, existing.id))
      .returning();
    await recordAudit(tx, ctx.actor, { action: "git_connection.rotate_secret", targetType: "git_connection", targetId: existing.id });
    await announceChange(tx, existing.id);
    return { connection: row!, secret };
  });
}

export async function updateConnection(ctx: DomainContext, input: z.infer<typeof updateConnectionInput>) {
  const existing = await getConnection(ctx, input.connectionId);
  const cipher = await cipherFor(ctx.db, ctx.keyring, ctx.actor.organizationId);
  const changes = {
    ...(input.apiBaseUrl !== undefined ? { apiBaseUrl: input.apiBaseUrl } : {}),
    ...(input.apiToken !== undefined ? { encryptedApiToken: input.apiToken === null ? null : cipher.encrypt(input.apiToken, tokenContext(existing.id)) } : {}),
  };
  if (Object.keys(changes).length === 0) throw new AppError("INVALID", "Nothing to change: give apiBaseUrl or apiToken");
  return ctx.db.transaction(async (tx) => {
    const [row] = await tx.update(gitConnections).set(changes).where(eq(gitConnections.id, existing.id)).returning();
    await recordAudit(tx, ctx.actor, {
      action: "git_connection.update",
      targetType: "git_connection",
      targetId: existing.id,
      changes: {
        ...(input.apiBaseUrl !== undefined ? { apiBaseUrl: input.apiBaseUrl } : {}),
        ...(input.apiToken !== undefined ? { apiToken: input.apiToken === null ? null : "[secret]" } : {}),
      },
    });
    return row!;
  });
}

/** Removes the connection and its stored deliveries; its webhook URL answers 404 from then on. */
export async function deleteConnection(ctx: DomainContext, connectionId: string) {
  const existing = await getConnection(ctx, connectionId);
  return ctx.db.transaction(async (tx) => {
    await tx.delete(gitConnections).where(eq(gitConnections.id, existing.id));
    await announceChange(tx, existing.id);
    await recordAudit(tx, ctx.actor, {
      action: "git_connection.delete",
      targetType: "git_connection",
      targetId: existing.id,
      changes: { name: existing.name, provider: existing.provider },
    });
    return existing;
  });
}

/**
 * What the intake verifies deliveries with: the webhook secret in plaintext, and sealed as
 * stored, which the intake's insert compares with the stored one (server/webhooks/batcher.ts).
 */
export type IntakeConnection = { id: string; organizationId: string; provider: GitProvider; secret: string; sealedSecret: string };

/** The connection with its webhook secret in plaintext, for the intake (which caches it briefly); null when unknown. */
export async function loadIntakeConnection(services: Services, connectionId: string): Promise<IntakeConnection | null> {
  const [row] = await services.db.select().from(gitConnections).where(eq(gitConnections.id, connectionId));
  if (!row) return null;
  const cipher = await cipherFor(services.db, services.keyring, row.organizationId);
  const secret = cipher.decrypt(row.encryptedSecret, secretContext(row.id));
  return { id: row.id, organizationId: row.organizationId, provider: row.provider, secret, sealedSecret: row.encryptedSecret };
}

/** The connection's API token in plaintext, for posting statuses and comments; null when none is set. */
export async function connectionApiToken(services: Services, row: ConnectionRow): Promise<string | null> {
  if (!row.encryptedApiToken) return null;
  const cipher = await cipherFor(services.db, services.keyring, row.organizationId);
  return cipher.decrypt(row.encryptedApiToken, tokenContext(row.id));
}
