import { and, desc, eq, inArray, lt, ne } from "drizzle-orm";
import { z } from "zod";
import { DEFAULT_STAGE, serviceKind } from "../../engine/protocol/snapshot";
import type { DomainContext } from "../context";
import { deploymentEvents, deployments } from "../db/schema";
import { getDeployment } from "./queries";

/**
 * What a deployment left live (issue 16): per service of its snapshot, in its stage, whether it
 * went live with this deployment, failed, or never started (a stage before it failed); and the
 * release that serves it, this deployment's or, when it did not go live here, the one of the
 * latest earlier deployment that switched to it. Read from recorded events, like every status.
 */
export const serviceOutcomes = ["live", "failed", "skipped", "canceled", "running", "pending", "done"] as const;

export const deploymentSummaryOutput = z.array(
  z.object({
    serviceId: z.string(),
    name: z.string(),
    kind: serviceKind,
    stage: z.string(),
    /**
     * live: switched to its new release here; done: a stop, restart or delete that succeeded;
     * failed, canceled: a step did; skipped: never started (what it waited for failed);
     * running: a step is under way; pending: not started yet, or never (the deployment ended).
     */
    outcome: z.enum(serviceOutcomes),
    /** The release that serves the service: its deployment and commit; null when none ever went live. */
    release: z.object({ deploymentId: z.string(), commit: z.string().nullable(), thisDeployment: z.boolean() }).nullable(),
  }),
);
export type DeploymentSummary = z.infer<typeof deploymentSummaryOutput>;

type Outcome = (typeof serviceOutcomes)[number];

export async function getDeploymentSummary(ctx: DomainContext, deploymentId: string): Promise<DeploymentSummary> {
  const deployment = await getDeployment(ctx, deploymentId);
  const { snapshot } = deployment;
  const stageOf = new Map((snapshot.stages ?? []).flatMap((stage) => stage.serviceIds.map((id) => [id, stage.name] as const)));
  const events = await ctx.db
    .select({ serviceId: deploymentEvents.serviceId, step: deploymentEvents.step, status: deploymentEvents.status })
    .from(deploymentEvents)
    .where(eq(deploymentEvents.deploymentId, deployment.id))
    .orderBy(deploymentEvents.id);
  const outcomes = new Map<string, Outcome>();
  // Switched here: the new release serves, even if its drain then failed.
  const switched = new Set<string>();
  for (const event of events) {
    if (!event.serviceId) continue;
    if (event.step === "switch" && event.status === "succeeded") switched.add(event.serviceId);
    const current = outcomes.get(event.serviceId);
    // A failure stays one: a later event of the service does not undo it.
    if (current === "failed" || current === "canceled" || current === "skipped") continue;
    if (event.status === "failed" || event.status === "canceled" || event.status === "skipped") outcomes.set(event.serviceId, event.status);
    else if (event.step === "switch" && event.status === "succeeded") outcomes.set(event.serviceId, "live");
    else if (current === "live") continue;
    else if (event.status === "succeeded") outcomes.set(event.serviceId, snapshot.action === "DEPLOY" ? "running" : "done");
    else if (event.status === "started") outcomes.set(event.serviceId, "running");
  }
  const deploying = snapshot.action === "DEPLOY";
  const ids = snapshot.services.map((service) => service.id);
  const earlier = deploying
    ? await earlierReleases(
        ctx,
        deployment,
        ids.filter((id) => !switched.has(id)),
      )
    : new Map<string, Release>();
  return snapshot.services.map((service) => {
    const outcome = outcomes.get(service.id) ?? "pending";
    const release: Release | null = switched.has(service.id)
      ? { deploymentId: deployment.id, commit: deployment.commits[service.id] ?? null, thisDeployment: true }
      : (earlier.get(service.id) ?? null);
    return {
      serviceId: service.id,
      name: service.name,
      kind: service.kind,
      stage: stageOf.get(service.id) ?? DEFAULT_STAGE,
      outcome,
      release: deploying ? release : null,
    };
  });
}

type Release = { deploymentId: string; commit: string | null; thisDeployment: boolean };

/** Per service, the latest deployment before this one that switched it to a new release. */
async function earlierReleases(ctx: DomainContext, deployment: { id: string; environmentId: string; createdAt: Date }, serviceIds: string[]) {
  const releases = new Map<string, Release>();
  if (serviceIds.length === 0) return releases;
  const switched = await ctx.db
    .select({ serviceId: deploymentEvents.serviceId, deploymentId: deployments.id, commits: deployments.commits })
    .from(deploymentEvents)
    .innerJoin(deployments, eq(deployments.id, deploymentEvents.deploymentId))
    .where(
      and(
        eq(deployments.environmentId, deployment.environmentId),
        ne(deployments.id, deployment.id),
        lt(deployments.createdAt, deployment.createdAt),
        inArray(deploymentEvents.serviceId, serviceIds),
        eq(deploymentEvents.step, "switch"),
        eq(deploymentEvents.status, "succeeded"),
      ),
    )
    .orderBy(desc(deploymentEvents.at));
  for (const row of switched) {
    if (!row.serviceId || releases.has(row.serviceId)) continue;
    releases.set(row.serviceId, { deploymentId: row.deploymentId, commit: row.commits[row.serviceId] ?? null, thisDeployment: false });
  }
  return releases;
}
