import { and, asc, desc, eq, gt, gte, ilike, type SQL } from "drizzle-orm";
import { z } from "zod";
import type { DomainContext } from "../context";
import { logLines } from "../db/schema";
import { getDeployment } from "../deployments/queries";
import { AppError } from "../errors";
import { integerParam, timestamp } from "../input-schemas";
import { getService } from "../services/services";

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
