"use client";

import { useQuery } from "@tanstack/react-query";
import type { Outputs } from "../api-types";
import { useTRPC } from "../trpc";

type OverviewData = Outputs["organization"]["overview"];
export type OverviewProject = OverviewData["projects"][number];
export type OverviewEnvironment = OverviewProject["environments"][number];

/**
 * The organization's tree (`organization.overview`), shared by every page through the query
 * cache: pages find their project, environment or service in it for names (breadcrumbs),
 * statuses and URLs, instead of one request per level. Kept live by the realtime stream
 * (components/live-status.ts), not by polling.
 */
export function useOverview() {
  const trpc = useTRPC();
  return useQuery(trpc.organization.overview.queryOptions({}));
}

export function findEnvironment(data: OverviewData | undefined, environmentId: string) {
  for (const project of data?.projects ?? []) {
    const environment = project.environments.find((candidate) => candidate.id === environmentId);
    if (environment) return { project, environment };
  }
  return null;
}

export function findService(data: OverviewData | undefined, serviceId: string) {
  for (const project of data?.projects ?? []) {
    for (const environment of project.environments) {
      const service = environment.services.find((candidate) => candidate.id === serviceId);
      if (service) return { project, environment, service };
    }
  }
  return null;
}
