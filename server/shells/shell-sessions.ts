import { and, eq, isNull, lt } from "drizzle-orm";
import { assertRole, type Actor } from "../auth/actor";
import { recordAudit } from "../audit/record-audit";
import type { DomainContext, Services } from "../context";
import { environments, shellSessions, type Role } from "../db/schema";
import { AppError } from "../errors";
import { getService } from "../services/services";

/**
 * Shell sessions, control-plane side: who may open one (DEVELOPER and up, in their own
 * organization), the row that tracks it, and the audit events `shell.open` and `shell.close`.
 * The audit records who, which service, when, how long and how it ended: never what was typed
 * or shown, and not the command of `slipway shell … -- cmd` either (it may hold secrets).
 */
export type ShellMode = "interactive" | "command";

/** The role a shell needs; a member demoted below it loses the shells they hold (issue 13). */
export const SHELL_ROLE = "DEVELOPER" satisfies Role;

/** Checks the caller may open a shell in the service and records the pending session (not audited until the engine started it). */
export async function prepareShellSession(ctx: DomainContext, input: { sessionId: string; serviceId: string; mode: ShellMode }) {
  assertRole(ctx.actor, SHELL_ROLE);
  const service = await getService(ctx, input.serviceId);
  const [environment] = await ctx.db.select({ clusterId: environments.clusterId }).from(environments).where(eq(environments.id, service.environmentId));
  if (!environment) throw new AppError("NOT_FOUND", "Environment not found");
  const { actor } = ctx;
  const inserted = await ctx.db
    .insert(shellSessions)
    .values({
      id: input.sessionId,
      organizationId: actor.organizationId,
      serviceId: service.id,
      clusterId: environment.clusterId,
      actorType: actor.type,
      actorId: actor.id,
      actorLabel: actor.label,
      origin: actor.origin,
      ip: actor.ip ?? null,
      mode: input.mode,
      openedAt: ctx.now(),
    })
    .onConflictDoNothing()
    .returning({ id: shellSessions.id });
  if (inserted.length === 0) throw new AppError("CONFLICT", "This session id is taken");
  return { sessionId: input.sessionId, serviceId: service.id, serviceName: service.name, clusterId: environment.clusterId };
}

/** The engine started the session: it counts from now, and is audited. */
export async function confirmShellSession(ctx: DomainContext, sessionId: string) {
  await ctx.db.transaction(async (tx) => {
    const [row] = await tx.update(shellSessions).set({ openedAt: ctx.now() }).where(eq(shellSessions.id, sessionId)).returning();
    if (!row) throw new AppError("NOT_FOUND", "Shell session not found");
    await recordAudit(tx, ctx.actor, {
      action: "shell.open",
      targetType: "service",
      targetId: row.serviceId,
      changes: { sessionId, mode: row.mode, startedAt: row.openedAt.toISOString() },
    });
  });
}

/** The engine refused or never answered: the session did not happen. */
export async function abandonShellSession({ db }: Services, sessionId: string) {
  await db.delete(shellSessions).where(and(eq(shellSessions.id, sessionId), isNull(shellSessions.closedAt)));
}

/**
 * Ends a session once, whoever notices first (the engine's exit, the client's close or
 * disconnect), and writes `shell.close` with its exit code and duration. Returns false when it
 * was closed already.
 */
export async function closeShellSession(svc: Services, sessionId: string, outcome: { exitCode: number | null; reason?: string }): Promise<boolean> {
  return svc.db.transaction(async (tx) => {
    const closedAt = svc.now();
    const [row] = await tx
      .update(shellSessions)
      .set({ closedAt, exitCode: outcome.exitCode, closeReason: outcome.reason ?? null })
      .where(and(eq(shellSessions.id, sessionId), isNull(shellSessions.closedAt)))
      .returning();
    if (!row) return false;
    const actor: Actor = {
      type: row.actorType as Actor["type"],
      id: row.actorId,
      label: row.actorLabel,
      organizationId: row.organizationId,
      // Only the fields the audit writes are read; the role was checked at open.
      role: "DEVELOPER",
      origin: row.origin,
      ip: row.ip ?? undefined,
    };
    await recordAudit(tx, actor, {
      action: "shell.close",
      targetType: "service",
      targetId: row.serviceId,
      changes: {
        sessionId,
        mode: row.mode,
        startedAt: row.openedAt.toISOString(),
        endedAt: closedAt.toISOString(),
        durationMs: Math.max(0, closedAt.getTime() - row.openedAt.getTime()),
        exitCode: outcome.exitCode,
        ...(outcome.reason ? { reason: outcome.reason } : {}),
      },
    });
    return true;
  });
}

/** The cluster a session runs on, while it is open: engines may only speak for their own sessions. */
export async function openSessionCluster({ db }: Services, sessionId: string): Promise<string | null> {
  const [row] = await db
    .select({ clusterId: shellSessions.clusterId })
    .from(shellSessions)
    .where(and(eq(shellSessions.id, sessionId), isNull(shellSessions.closedAt)));
  return row?.clusterId ?? null;
}

/** The cluster's open sessions; only those opened (or, pending, asked for) before `openedBefore` when given. */
export async function openSessionsOfCluster({ db }: Services, clusterId: string, openedBefore?: Date): Promise<string[]> {
  const rows = await db
    .select({ id: shellSessions.id })
    .from(shellSessions)
    .where(and(eq(shellSessions.clusterId, clusterId), isNull(shellSessions.closedAt), openedBefore ? lt(shellSessions.openedAt, openedBefore) : undefined));
  return rows.map((row) => row.id);
}
