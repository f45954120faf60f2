import type { VariableScope } from "../db/schema";
import type { JobOutput, JobRef } from "./job-outputs";

export type VariableSource = VariableScope | "BUILT_IN" | "JOB";

export type StoredPlainVariable = { scope: VariableScope; targetId: string; key: string; value: string; secret: boolean };

export type EffectiveVariable = {
  key: string;
  value: string;
  secret: boolean;
  source: VariableSource;
  /** Scopes that also set this key and were overridden. */
  overrides: VariableScope[];
  /** The lifecycle job that set it (source JOB); its value is the engine's, unknown here. */
  job: JobRef | null;
};

const order: Record<VariableScope, number> = { PROJECT: 0, ENVIRONMENT: 1, SERVICE: 2 };

/**
 * The variables a service receives: project, then environment, then service values, the
 * narrowest winning, then Slipway's built-in ones (users cannot set those), and last what the
 * environment's lifecycle jobs output, which the engine puts over all of them, being newer.
 */
export function resolveVariables(
  stored: StoredPlainVariable[],
  target: { projectId: string; environmentId: string; serviceId: string },
  builtIn: Record<string, string>,
  /** Built-in variables that are secrets (a database's password and URL). */
  secretBuiltIns: ReadonlySet<string> = new Set(),
  outputs: JobOutput[] = [],
): EffectiveVariable[] {
  const applicable = stored
    .filter(
      (v) =>
        (v.scope === "PROJECT" && v.targetId === target.projectId) ||
        (v.scope === "ENVIRONMENT" && v.targetId === target.environmentId) ||
        (v.scope === "SERVICE" && v.targetId === target.serviceId),
    )
    .sort((a, b) => order[a.scope] - order[b.scope]);
  const resolved = new Map<string, EffectiveVariable>();
  for (const variable of applicable) {
    const previous = resolved.get(variable.key);
    resolved.set(variable.key, {
      key: variable.key,
      value: variable.value,
      secret: variable.secret,
      source: variable.scope,
      overrides: previous ? [...previous.overrides, previous.source as VariableScope] : [],
      job: null,
    });
  }
  for (const [key, value] of Object.entries(builtIn))
    resolved.set(key, { key, value, secret: secretBuiltIns.has(key), source: "BUILT_IN", overrides: [], job: null });
  for (const { key, job } of outputs) {
    const previous = resolved.get(key);
    const overrides = previous && previous.source !== "BUILT_IN" && previous.source !== "JOB" ? [...previous.overrides, previous.source] : [];
    resolved.set(key, { key, value: "", secret: false, source: "JOB", overrides, job });
  }
  return [...resolved.values()];
}

/** Variables Slipway gives every service, named SLIPWAY_* (users cannot set those). */
export function builtInVariables(input: {
  project: string;
  environment: string;
  mode: string;
  service: string;
  serviceId: string;
  domain: string;
  deploymentId?: string;
}): Record<string, string> {
  return {
    SLIPWAY_PROJECT_NAME: input.project,
    SLIPWAY_ENVIRONMENT_NAME: input.environment,
    SLIPWAY_ENVIRONMENT_MODE: input.mode,
    SLIPWAY_SERVICE_NAME: input.service,
    SLIPWAY_SERVICE_ID: input.serviceId,
    SLIPWAY_SERVICE_DOMAIN: input.domain,
    ...(input.deploymentId ? { SLIPWAY_DEPLOYMENT_ID: input.deploymentId } : {}),
  };
}
