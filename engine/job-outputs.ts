import { z } from "zod";
import type { EngineFiles } from "./engine-files";
import type { ServiceSpec } from "./protocol";
import { readJson, writeJsonAtomic } from "./runtime/shared/files";

/** Outputs at least this long are masked in logs. */
const MASKED_LENGTH = 6;

const stored = z.record(z.string(), z.object({ at: z.string(), outputs: z.record(z.string(), z.string()) }));

/** The outputs of an environment's lifecycle jobs, as one deployment sees and extends them. */
export type EnvironmentOutputs = {
  /** Every job's latest outputs, later runs winning on shared names. */
  current(): Record<string, string>;
  record(jobServiceId: string, outputs: Record<string, string>): Promise<void>;
  forget(jobServiceId: string): Promise<void>;
};

/**
 * Outputs are kept by the engine per environment (environments/<id>/outputs.json), so a later
 * deployment of an application alone still receives what the environment's seed job wrote.
 */
export function environmentOutputs(paths: EngineFiles) {
  return {
    async read(environmentId: string): Promise<EnvironmentOutputs> {
      const file = paths.outputsFile(environmentId);
      const byJob = (await readJson(file, stored).catch(() => null)) ?? {};
      const save = () => writeJsonAtomic(file, byJob, 0o600);
      return {
        current: () =>
          Object.assign(
            {},
            ...Object.values(byJob)
              .sort((a, b) => a.at.localeCompare(b.at))
              .map((entry) => entry.outputs),
          ) as Record<string, string>,
        async record(jobServiceId, outputs) {
          byJob[jobServiceId] = { at: new Date().toISOString(), outputs };
          await save();
        },
        async forget(jobServiceId) {
          if (!(jobServiceId in byJob)) return;
          delete byJob[jobServiceId];
          await save();
        },
      };
    },
  };
}

/**
 * The service with the jobs' outputs among its variables. They override what users set, being
 * newer, and are masked in logs like secrets, since a seed may well hand over a token; short
 * values (counts, flags) are not: masking "3" would garble every line that has a digit.
 * Databases take no variables from jobs.
 */
export function withOutputs<S extends ServiceSpec>(service: S, outputs: Record<string, string>): S {
  if (service.kind === "DATABASE" || Object.keys(outputs).length === 0) return service;
  const variables = service.variables.filter((variable) => !(variable.key in outputs));
  return { ...service, variables: [...variables, ...Object.entries(outputs).map(([key, value]) => ({ key, value, secret: value.length >= MASKED_LENGTH }))] };
}
