import type { ApiClient } from "./client";
import { usageError } from "./errors";

/**
 * The CLI names things as `project[/environment[/service]]`, the way the API's /resolve does.
 * Paths are checked for shape here, so a typo in the form is a usage error before any request.
 */
export type PathDepth = 1 | 2 | 3;
export type NamePath = { text: string; depth: PathDepth; project: string; environment?: string; service?: string };

const forms: Record<PathDepth, string> = { 1: "<project>", 2: "<project>/<env>", 3: "<project>/<env>/<service>" };

export function parsePath(text: string, allowed: { min: PathDepth; max: PathDepth }): NamePath {
  const segments = text.split("/");
  const depth = segments.length;
  const expected = allowed.min === allowed.max ? forms[allowed.min] : `${forms[allowed.min]} or ${forms[allowed.max]}`;
  if (depth < allowed.min || depth > allowed.max || segments.some((segment) => segment.length === 0)) {
    throw usageError(`"${text}" is not a path of the form ${expected}`);
  }
  const [project, environment, service] = segments as [string, string?, string?];
  return { text, depth: depth as PathDepth, project, environment, service };
}

/** Ids of an environment path (`project/env`), resolved by the API. */
export async function resolveEnvironment(api: ApiClient, text: string): Promise<{ projectId: string; environmentId: string }> {
  const path = parsePath(text, { min: 2, max: 2 });
  const resolved = await api.resolve(path.text);
  return { projectId: resolved.projectId, environmentId: resolved.environmentId! };
}

/** Ids of a service path (`project/env/service`). */
export async function resolveService(api: ApiClient, text: string): Promise<{ environmentId: string; serviceId: string }> {
  const path = parsePath(text, { min: 3, max: 3 });
  const resolved = await api.resolve(path.text);
  return { environmentId: resolved.environmentId!, serviceId: resolved.serviceId! };
}
