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
  await auditStatements(db).insert.execute(auditValues(actor, entry));
}

const AUDIT_COLUMNS = ["organizationId", "actorType", "actorId", "actorLabel", "origin", "action", "targetType", "targetId", "ip"] as const;

/** The placeholders of an audit event's insert, named `<column><suffix>`. */
function auditPlaceholders(suffix = "") {
  return { ...placeholders(AUDIT_COLUMNS, suffix), changes: jsonParam<Record<string, unknown>>(`changes${suffix}`) };
}

/** The values of auditPlaceholders(suffix) for an event. */
export function auditValues(actor: AuditActor, entry: AuditEntry, suffix = ""): Record<string, unknown> {
  const row = auditRow(actor, entry);
  const values: Record<string, unknown> = { [`changes${suffix}`]: jsonValue(row.changes) };
  for (const column of AUDIT_COLUMNS) values[`${column}${suffix}`] = row[column];
  return values;
}

/** Every mutation writes one (see preparedOnce). */
const auditStatements = preparedOnce((db) => ({
  insert: db.insert(auditEvents).values(auditPlaceholders()).prepare("record_audit"),
}));

/** The suffix of the placeholders of auditWith's insert: its values are auditValues(actor, entry, AUDITED). */
export const AUDITED = "Audited";

/**
 * The audit event's insert as a WITH of another prepared statement (a mutation on the path of
 * every dispatch): the change and its audit in one statement, one round trip.
 */
export function auditWith(db: Executor) {
  return db.$with("audited").as(db.insert(auditEvents).values(auditPlaceholders(AUDITED)).returning({ id: auditEvents.id }));
}

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
