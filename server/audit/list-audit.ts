import { and, desc, eq, gte, lt, lte, type SQL } from "drizzle-orm";
import { z } from "zod";
import type { DomainContext } from "../context";
import { auditEvents } from "../db/schema";
import { integerParam, timestamp } from "../input-schemas";
import { describeAuditTargets } from "./audit-targets";

export const listAuditInput = z.object({
  actor: z.string().optional(),
  action: z.string().optional(),
  targetId: z.string().optional(),
  from: timestamp.optional(),
  to: timestamp.optional(),
  /** Page backwards: events with an id below this one. */
  before: integerParam({ min: 1, max: Number.MAX_SAFE_INTEGER }).optional(),
  limit: integerParam({ min: 1, max: 500 }).default(100),
});

/** A page of the organization's audit events, newest first, each with its target's name and page (and its deployment's). */
export async function listAudit({ db, actor }: DomainContext, input: z.infer<typeof listAuditInput>) {
  const filters: SQL[] = [eq(auditEvents.organizationId, actor.organizationId)];
  if (input.actor) filters.push(eq(auditEvents.actorLabel, input.actor));
  if (input.action) filters.push(eq(auditEvents.action, input.action));
  if (input.targetId) filters.push(eq(auditEvents.targetId, input.targetId));
  if (input.from) filters.push(gte(auditEvents.at, new Date(input.from)));
  if (input.to) filters.push(lte(auditEvents.at, new Date(input.to)));
  if (input.before) filters.push(lt(auditEvents.id, input.before));
  const rows = await db
    .select()
    .from(auditEvents)
    .where(and(...filters))
    .orderBy(desc(auditEvents.id))
    .limit(input.limit);
  const targets = await describeAuditTargets(db, actor.organizationId, rows);
  return rows.map((row) => ({ ...row, ...targets.get(row.id)! }));
}
