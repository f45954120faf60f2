import { and, asc, desc, eq, gt, gte, ilike, inArray, isNotNull, like, lt, max, min, sql, type SQL } from "drizzle-orm";
import { logFds } from "../../engine/protocol/events";
import { z } from "zod";
import type { DomainContext } from "../context";
import { logLines } from "../db/schema";
import { getDeployment } from "../deployments/queries";
import { AppError } from "../errors";
import { integerParam, timestamp } from "../input-schemas";
import { getService } from "../services/services";
import { levelsAtLeast, logLevels } from "../../engine/protocol/log-level";

export const readLogsInput = z.object({
  deploymentId: z.string().uuid().optional(),
  serviceId: z.string().uuid().optional(),
  /** Resume after this sequence number (the last one the reader has). */
  after: integerParam({ min: 0, max: Number.MAX_SAFE_INTEGER }).default(0),
  limit: integerParam({ min: 1, max: 5000 }).default(1000),
  /** Only the last N matching lines (still in sequence order), for a first screen of a long log. */
  tail: integerParam({ min: 1, max: 5000 }).optional(),
  grep: z.string().max(200).optional(),
  since: timestamp.optional(),
  /** Only lines before this time (with `since`, a time range). */
  until: timestamp.optional(),
  /** Only what the process wrote to this stream (stderr for errors); "system" is the platform's own lines. */
  fd: z.enum(logFds).optional(),
  /** Only the runtime output of this release (a service's logs across deploys hold several). */
  releaseId: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,100}$/, "expected a release id")
    .optional(),
  /** Only JSON log lines at this level or a more severe one (`error` keeps fatal too); plain text has no level. */
  level: z.enum(logLevels).optional(),
});

/**
 * Stored log lines of a deployment (build and deploy output) or of a service (runtime output),
 * in sequence order. A reader that reconnects passes the last seq it has and misses nothing.
 */
export async function readLogs(ctx: DomainContext, input: z.infer<typeof readLogsInput>) {
  if (!input.deploymentId && !input.serviceId) throw new AppError("INVALID", "Pass a deploymentId, a serviceId, or both");
  // A deployment's output, of one of its services when both are given; else a service's runtime output.
  const stream = input.deploymentId
    ? `deployment:${(await getDeployment(ctx, input.deploymentId)).id}`
    : `service:${(await getService(ctx, input.serviceId!)).id}`;
  const filters: SQL[] = [eq(logLines.stream, stream), eq(logLines.organizationId, ctx.actor.organizationId), gt(logLines.seq, input.after)];
  if (input.deploymentId && input.serviceId) filters.push(eq(logLines.serviceId, input.serviceId));
  if (input.grep) filters.push(ilike(logLines.text, `%${input.grep.replace(/[\\%_]/g, (c) => `\\${c}`)}%`));
  if (input.since) filters.push(gte(logLines.at, new Date(input.since)));
  if (input.until) filters.push(lt(logLines.at, new Date(input.until)));
  if (input.fd) filters.push(eq(logLines.fd, input.fd));
  // A runtime line's source is `<release id>:<byte offset>` (engine/runtime/local/release-processes.ts).
  if (input.releaseId) filters.push(like(logLines.source, `${input.releaseId}:%`));
  if (input.level) filters.push(inArray(logLines.level, levelsAtLeast(input.level)));
  if (input.tail) {
    const newest = await ctx.db
      .select()
      .from(logLines)
      .where(and(...filters))
      .orderBy(desc(logLines.seq))
      .limit(input.tail);
    return newest.reverse();
  }
  return ctx.db
    .select()
    .from(logLines)
    .where(and(...filters))
    .orderBy(asc(logLines.seq))
    .limit(input.limit);
}

export const logReleasesInput = z.object({
  serviceId: z.string().uuid(),
  limit: integerParam({ min: 1, max: 100 }).default(20),
});

/**
 * The releases a service's runtime log holds lines of, the one that logged last first, with the
 * time of their first and last line: what the Logs tab's release filter offers. A line's source
 * starts with its release id (engine/runtime/local/release-processes.ts lineSource).
 */
export async function logReleases(ctx: DomainContext, input: z.infer<typeof logReleasesInput>) {
  const service = await getService(ctx, input.serviceId);
  const releaseId = sql<string>`split_part(${logLines.source}, ':', 1)`;
  const lastAt = max(logLines.at);
  const rows = await ctx.db
    .select({ releaseId, firstAt: min(logLines.at), lastAt })
    .from(logLines)
    .where(and(eq(logLines.stream, `service:${service.id}`), eq(logLines.organizationId, ctx.actor.organizationId), isNotNull(logLines.source)))
    .groupBy(releaseId)
    .orderBy(desc(lastAt))
    .limit(input.limit);
  return rows.map((row) => ({ releaseId: row.releaseId, firstAt: row.firstAt!.toISOString(), lastAt: row.lastAt!.toISOString() }));
}
