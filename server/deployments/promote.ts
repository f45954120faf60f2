import { and, asc, desc, eq } from "drizzle-orm";
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

/** What a promotion deploys: each target service and the commit its namesake ran in the source's deployment. */
export type PromotionPlan = {
  from: { id: string; name: string };
  to: { id: string; name: string };
  /** The source's latest successful DEPLOY, whose commits are promoted. */
  sourceDeploymentId: string;
  services: { serviceId: string; name: string; commit: string }[];
  /** Target services left as they are: not built from git, or no namesake ran in the source. */
  skipped: string[];
};

/**
 * What promoting one environment into another of the same project would deploy: each service of
 * the target built from git, at the commit its namesake ran in the source's latest successful
 * deployment. Read alone, it is what a confirmation shows before anything is deployed.
 */
export async function planPromotion(ctx: DomainContext, input: z.infer<typeof promoteInput>): Promise<PromotionPlan> {
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
  const all = await ctx.db.select().from(services).where(eq(services.environmentId, to.id)).orderBy(asc(services.name));
  const targets = all.filter((service) => (service.kind === "APPLICATION" || service.kind === "JOB") && ran.has(service.name));
  if (targets.length === 0)
    throw new AppError("INVALID", `No service of "${to.name}" built from git has a namesake that ran in "${from.name}"'s deployment ${source.id}`);
  return {
    from: { id: from.id, name: from.name },
    to: { id: to.id, name: to.name },
    sourceDeploymentId: source.id,
    services: targets.map((service) => ({ serviceId: service.id, name: service.name, commit: ran.get(service.name)! })),
    skipped: all.filter((service) => !targets.includes(service)).map((service) => service.name),
  };
}

/**
 * Promotes what runs in one environment into another of the same project (planPromotion says
 * what). Configuration and variables stay the target's own (production keeps its secrets); a
 * target service with no namesake that ran is not touched.
 */
export async function promoteEnvironment(ctx: DomainContext, input: z.infer<typeof promoteInput>) {
  const plan = await planPromotion(ctx, input);
  return requestDeployment(
    ctx,
    {
      environmentId: plan.to.id,
      action: "DEPLOY",
      serviceIds: plan.services.map((service) => service.serviceId),
      refs: Object.fromEntries(plan.services.map((service) => [service.serviceId, { commit: service.commit }])),
    },
    { kind: "promote", fromEnvironmentId: plan.from.id, fromEnvironment: plan.from.name, fromDeploymentId: plan.sourceDeploymentId },
  );
}
