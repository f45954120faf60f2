import { ENVIRONMENT_MODES, type EnvironmentMode } from "../api-types";
import type { OverviewEnvironment, OverviewProject } from "./use-overview";

/**
 * The overview's search and filters (issue 15, item 7), kept in the URL's query so a filtered
 * view can be shared: `?q=web&project=shop&mode=PREVIEW&status=failed`.
 */
export type OverviewFilters = { q: string; project: string | null; mode: EnvironmentMode | null; status: StatusGroup | null };

/** Statuses grouped the way people look for them; an environment matches by its own status or any of its services'. */
export const STATUS_GROUPS = {
  live: { label: "Deployed or running", statuses: ["DEPLOYED", "running", "idle", "sleeping"] },
  working: { label: "In progress", statuses: ["QUEUED", "BUILDING", "DEPLOYING", "STOPPING", "DELETING", "CANCELING", "starting"] },
  failed: { label: "Failed or crashed", statuses: ["BUILD_ERROR", "DEPLOYMENT_ERROR", "crashed"] },
  stopped: { label: "Stopped or canceled", statuses: ["STOPPED", "CANCELED", "stopped"] },
  never: { label: "Never deployed", statuses: ["NEVER_DEPLOYED", "EMPTY"] },
} as const satisfies Record<string, { label: string; statuses: readonly string[] }>;
export type StatusGroup = keyof typeof STATUS_GROUPS;

type Params = { get(name: string): string | null };

/** The filters a URL's query says; unknown values are ignored rather than hiding everything. */
export function filtersFromQuery(params: Params): OverviewFilters {
  const mode = params.get("mode")?.toUpperCase() as EnvironmentMode | undefined;
  const status = params.get("status") as StatusGroup | null;
  return {
    q: params.get("q")?.trim() ?? "",
    project: params.get("project") || null,
    mode: mode && (ENVIRONMENT_MODES as readonly string[]).includes(mode) ? mode : null,
    status: status && status in STATUS_GROUPS ? status : null,
  };
}

/** The query string for these filters, without the ones left at "all". */
export function queryFromFilters(filters: OverviewFilters): string {
  const params = new URLSearchParams();
  if (filters.q) params.set("q", filters.q);
  if (filters.project) params.set("project", filters.project);
  if (filters.mode) params.set("mode", filters.mode);
  if (filters.status) params.set("status", filters.status);
  return params.toString();
}

export const isFiltered = (filters: OverviewFilters) => Boolean(filters.q || filters.project || filters.mode || filters.status);

const includes = (name: string, q: string) => name.toLowerCase().includes(q.toLowerCase());

/**
 * An environment as the filters show it, or null when it does not match. A search matches the
 * project's, the environment's or a service's name; when only services match, only they are
 * listed.
 */
function filterEnvironment(project: OverviewProject, environment: OverviewEnvironment, filters: OverviewFilters): OverviewEnvironment | null {
  if (filters.mode && environment.mode !== filters.mode) return null;
  if (filters.status) {
    const wanted: readonly string[] = STATUS_GROUPS[filters.status].statuses;
    if (!wanted.includes(environment.status) && !environment.services.some((service) => wanted.includes(service.status))) return null;
  }
  if (!filters.q || includes(project.name, filters.q) || includes(environment.name, filters.q)) return environment;
  const services = environment.services.filter((service) => includes(service.name, filters.q));
  return services.length > 0 ? { ...environment, services } : null;
}

/**
 * The projects and environments the filters let through. A project without a matching
 * environment is kept only when nothing but the project (or a search on its name) is asked.
 */
export function applyFilters(projects: OverviewProject[], filters: OverviewFilters): OverviewProject[] {
  const byEnvironment = Boolean(filters.mode || filters.status);
  return projects.flatMap((project) => {
    if (filters.project && project.name !== filters.project) return [];
    const environments = project.environments.flatMap((environment) => filterEnvironment(project, environment, filters) ?? []);
    const keepEmpty = !byEnvironment && (!filters.q || includes(project.name, filters.q));
    return environments.length > 0 || keepEmpty ? [{ ...project, environments }] : [];
  });
}

/** The organization's preview environments (one per open pull request), newest pull request first. */
export function previewEnvironments(projects: OverviewProject[]) {
  return projects
    .flatMap((project) => project.environments.flatMap((environment) => (environment.preview ? [{ project, environment, preview: environment.preview }] : [])))
    .sort((a, b) => b.preview.number - a.preview.number);
}
