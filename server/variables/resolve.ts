import type { VariableScope } from "../db/schema";

export type VariableSource = VariableScope | "BUILT_IN";

export type StoredPlainVariable = { scope: VariableScope; targetId: string; key: string; value: string; secret: boolean };

export type EffectiveVariable = {
  key: string;
  value: string;
  secret: boolean;
  source: VariableSource;
  /** Wider scopes that also set this key and were overridden. */
  overrides: VariableScope[];
};

const order: Record<VariableSource, number> = { PROJECT: 0, ENVIRONMENT: 1, SERVICE: 2, BUILT_IN: 3 };

/**
 * The variables a service receives: project, then environment, then service values, the
 * narrowest winning, and Slipway's built-in ones last (they cannot be set by users).
 */
export function resolveVariables(
  stored: StoredPlainVariable[],
  target: { projectId: string; environmentId: string; serviceId: string },
  builtIn: Record<string, string>,
  /** Built-in variables that are secrets (a database's password and URL). */
  secretBuiltIns: ReadonlySet<string> = new Set(),
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
    });
  }
  for (const [key, value] of Object.entries(builtIn)) resolved.set(key, { key, value, secret: secretBuiltIns.has(key), source: "BUILT_IN", overrides: [] });
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
