import { DEFAULT_STAGE, type ServiceKind, type ServiceSpec, type Snapshot } from "./protocol";

/**
 * Services of a stage that start together, up to the engine's concurrency; a wave starts once
 * the one before it is done, since it may need it. Databases form one wave, containers and
 * applications one; each job is a wave of its own (a lifecycle job's outputs become variables
 * of the services after it, later jobs included).
 */
export type Wave = ServiceSpec[];

/** A stage of a deployment as the engine runs it: its waves, one after the other (issue 16). */
export type PlannedStage = { name: string; waves: Wave[] };

const waveOf: Record<ServiceKind, "databases" | "job" | "servers"> = {
  DATABASE: "databases",
  JOB: "job",
  CONTAINER: "servers",
  APPLICATION: "servers",
};

/**
 * The stages of a snapshot, in the order to run them, each split into waves. The snapshot lists
 * services and stages in the order to act on them (databases first to deploy, last to stop and
 * delete), so waves are the runs of one wave kind in that order, and need no reversing here.
 */
export function planStages(snapshot: Pick<Snapshot, "services" | "stages">): PlannedStage[] {
  const stages = snapshot.stages ?? [{ name: DEFAULT_STAGE, serviceIds: snapshot.services.map((service) => service.id) }];
  const stageOf = new Map(stages.flatMap((stage, index) => stage.serviceIds.map((id) => [id, index] as const)));
  const missing = snapshot.services.filter((service) => !stageOf.has(service.id));
  if (missing.length > 0) throw new Error(`the snapshot puts ${missing.map((service) => service.name).join(", ")} in no stage`);
  return stages
    .map((stage, index) => {
      const waves: Wave[] = [];
      for (const service of snapshot.services.filter((candidate) => stageOf.get(candidate.id) === index)) {
        const last = waves.at(-1);
        if (last && service.kind !== "JOB" && waveOf[last[0]!.kind] === waveOf[service.kind]) last.push(service);
        else waves.push([service]);
      }
      return { name: stage.name, waves };
    })
    .filter((stage) => stage.waves.length > 0);
}
