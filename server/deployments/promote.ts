import { and, desc, eq } from "drizzle-orm";
import { z } from "zod";
import type { DomainContext } from "../context";
import { deployments, services } from "../db/schema";
import { getEnvironment } from "../environments/environments";
import { AppError } from "../errors";
import { requestDeployment } from "./request-deployment";

export const promoteInput = z.object({
  /** Where the commits come from: what its latest successful DEPLOY ran (staging, say). */
  fromEnvironmentId: z.string().uuid(),
  /** Where they go: its services of the same names are deployed at those commits (production). */
  toEnvironmentId: z.string().uuid(),
});

/**
 * Promotes what runs in one environment into another of the same project: each service of the
 * target built from git is deployed at the commit its namesake ran in the source's latest
 * successful deployment. Configuration and variables stay the target's own (production keeps
 * its secrets); a target service with no namesake that ran is not touched.
 */
export async function promoteEnvironment(ctx: DomainContext, input: z.infer<typeof promoteInput>) {
  const [from, to] = await Promise.all([getEnvironment(ctx, input.fromEnvironmentId), getEnvironment(ctx, input.toEnvironmentId)]);
  if (from.id === to.id) throw new AppError("INVALID", "An environment cannot be promoted into itself");
  if (from.projectId !== to.projectId) throw new AppError("INVALID", `Environments "${from.name}" and "${to.name}" are in different projects`);
  const [source] = await ctx.db
    .select()
    .from(deployments)
    .where(and(eq(deployments.environmentId, from.id), eq(deployments.action, "DEPLOY"), eq(deployments.status, "DEPLOYED")))
    .orderBy(desc(deployments.createdAt))
    .limit(1);
  if (!source) throw new AppError("INVALID", `Environment "${from.name}" has no successful deployment to promote`);
  const ran = new Map(
    source.snapshot.services.flatMap((service) => (source.commits[service.id] ? [[service.name, source.commits[service.id]!] as const] : [])),
  );
  const targets = (await ctx.db.select().from(services).where(eq(services.environmentId, to.id))).filter(
    (service) => (service.kind === "APPLICATION" || service.kind === "JOB") && ran.has(service.name),
  );
  if (targets.length === 0)
    throw new AppError("INVALID", `No service of "${to.name}" built from git has a namesake that ran in "${from.name}"'s deployment ${source.id}`);
  return requestDeployment(
    ctx,
    {
      environmentId: to.id,
      action: "DEPLOY",
      serviceIds: targets.map((service) => service.id),
      refs: Object.fromEntries(targets.map((service) => [service.id, { commit: ran.get(service.name)! }])),
    },
    { kind: "promote", fromEnvironmentId: from.id, fromEnvironment: from.name, fromDeploymentId: source.id },
  );
}
