import { and, desc, eq, isNotNull } from "drizzle-orm";
import type { Executor } from "../db/client";
import { deploymentEvents, deployments, services } from "../db/schema";

/** The lifecycle job whose run set a variable. */
export type JobRef = { serviceId: string; name: string };

/** A variable a lifecycle job wrote to $SLIPWAY_OUTPUT_FILE: its name and its job; the value stays with the engine. */
export type JobOutput = { key: string; job: JobRef };

/**
 * The variables an environment's lifecycle jobs set, as the engine keeps them
 * (engine/job-outputs.ts): each job's latest successful run at a start replaces that job's
 * earlier outputs, a later run wins a name two jobs share, and a deleted job's outputs are gone.
 * The control plane knows the names from the run's event, never the values, which may be tokens.
 */
export async function jobOutputs(db: Executor, environmentId: string): Promise<JobOutput[]> {
  const runs = await db
    .selectDistinctOn([deploymentEvents.serviceId], {
      serviceId: services.id,
      name: services.name,
      keys: deploymentEvents.outputKeys,
      at: deploymentEvents.at,
    })
    .from(deploymentEvents)
    .innerJoin(deployments, eq(deployments.id, deploymentEvents.deploymentId))
    .innerJoin(services, and(eq(services.id, deploymentEvents.serviceId), eq(services.environmentId, environmentId)))
    .where(
      and(
        eq(deployments.environmentId, environmentId),
        eq(deploymentEvents.step, "run"),
        eq(deploymentEvents.status, "succeeded"),
        isNotNull(deploymentEvents.outputKeys),
      ),
    )
    .orderBy(deploymentEvents.serviceId, desc(deploymentEvents.at));
  const byKey = new Map<string, JobOutput>();
  for (const run of runs.sort((a, b) => a.at.getTime() - b.at.getTime())) {
    for (const key of run.keys ?? []) byKey.set(key, { key, job: { serviceId: run.serviceId, name: run.name } });
  }
  return [...byKey.values()].sort((a, b) => a.key.localeCompare(b.key));
}
