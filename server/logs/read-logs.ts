import { and, asc, eq, gt, gte, ilike, type SQL } from "drizzle-orm";
import { z } from "zod";
import type { DomainContext } from "../context";
import { logLines } from "../db/schema";
import { getDeployment } from "../deployments/queries";
import { AppError } from "../errors";
import { getService } from "../services/services";

export const readLogsInput = z.object({
  deploymentId: z.string().uuid().optional(),
  serviceId: z.string().uuid().optional(),
  /** Resume after this sequence number (the last one the reader has). */
  after: z.coerce.number().int().nonnegative().default(0),
  limit: z.coerce.number().int().min(1).max(5000).default(1000),
  grep: z.string().max(200).optional(),
  since: z.string().datetime().optional(),
});

/**
 * Stored log lines of a deployment (build and deploy output) or of a service (runtime output),
 * in sequence order. A reader that reconnects passes the last seq it has and misses nothing.
 */
export async function readLogs(ctx: DomainContext, input: z.infer<typeof readLogsInput>) {
  if (!!input.deploymentId === !!input.serviceId) throw new AppError("INVALID", "Pass either a deploymentId or a serviceId");
  const stream = input.deploymentId
    ? `deployment:${(await getDeployment(ctx, input.deploymentId)).id}`
    : `service:${(await getService(ctx, input.serviceId!)).id}`;
  const filters: SQL[] = [eq(logLines.stream, stream), eq(logLines.organizationId, ctx.actor.organizationId), gt(logLines.seq, input.after)];
  if (input.grep) filters.push(ilike(logLines.text, `%${input.grep.replace(/[\\%_]/g, (c) => `\\${c}`)}%`));
  if (input.since) filters.push(gte(logLines.at, new Date(input.since)));
  return ctx.db
    .select()
    .from(logLines)
    .where(and(...filters))
    .orderBy(asc(logLines.seq))
    .limit(input.limit);
}
