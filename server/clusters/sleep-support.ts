import { eq } from "drizzle-orm";
import type { Executor } from "../db/client";
import { clusters } from "../db/schema";
import { AppError } from "../errors";

/**
 * Sleep when idle needs the engine's router to see requests and hold them while a release
 * starts: the local and docker runtimes have it, a kubernetes cluster's Ingress or Gateway does
 * not. Asking for it there is refused rather than kept and never done. Turning it off (0 or
 * null) is always allowed.
 */
export async function assertClusterSleeps(ctx: { db: Executor }, clusterId: string, sleepAfterMinutes: unknown) {
  if (!sleepAfterMinutes) return;
  const [cluster] = await ctx.db.select().from(clusters).where(eq(clusters.id, clusterId));
  if (cluster?.capabilities.runtime === "kubernetes") {
    throw new AppError(
      "INVALID",
      `Cluster "${cluster.name}" runs services on Kubernetes, where sleep when idle is not supported yet: remove sleepAfterMinutes`,
    );
  }
}
