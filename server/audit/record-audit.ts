import type { Actor } from "../auth/actor";
import type { Executor } from "../db/client";
import { jsonParam, jsonValue, placeholders, preparedOnce } from "../db/prepared";
import { auditEvents } from "../db/schema";

export type AuditEntry = {
  action: string;
  targetType: string;
  targetId?: string | null;
  /** The change, already free of secret values (see redact()). */
  changes?: Record<string, unknown>;
};

/**
 * Who an event is about: an actor of an organization, or (organizationId null) someone acting on
 * the instance outside any organization, as a newcomer signing up.
 */
export type AuditActor = Omit<Actor, "organizationId" | "role"> & { organizationId: string | null };

/** Writes one audit event in the caller's transaction, so a mutation and its audit land together. */
export async function recordAudit(db: Executor, actor: AuditActor, entry: AuditEntry): Promise<void> {
  const row = auditRow(actor, entry);
  await auditStatements(db).insert.execute({ ...row, changes: jsonValue(row.changes) });
}

/** Every mutation writes one (see preparedOnce). */
const auditStatements = preparedOnce((db) => ({
  insert: db
    .insert(auditEvents)
    .values({
      ...placeholders(["organizationId", "actorType", "actorId", "actorLabel", "origin", "action", "targetType", "targetId", "ip"]),
      changes: jsonParam<Record<string, unknown>>("changes"),
    })
    .prepare("record_audit"),
}));

/** The audit event's row, for a write that inserts it within a statement of its own (a clone's). */
export function auditRow(actor: AuditActor, entry: AuditEntry): typeof auditEvents.$inferInsert {
  return {
    organizationId: actor.organizationId,
    actorType: actor.type,
    actorId: actor.id,
    actorLabel: actor.label,
    origin: actor.origin,
    action: entry.action,
    targetType: entry.targetType,
    targetId: entry.targetId ?? null,
    changes: entry.changes ?? null,
    ip: actor.ip ?? null,
  };
}

export const REDACTED = "[secret]";
