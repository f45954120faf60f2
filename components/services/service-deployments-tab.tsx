"use client";

import { useQuery } from "@tanstack/react-query";
import { ServiceDeployments } from "../deployments/service-deployments";
import { useTRPC } from "../trpc";

/** The Deployments tab: every deployment that touched the service, with rollback to an earlier one. */
export function ServiceDeploymentsTab({ serviceId }: { serviceId: string }) {
  const trpc = useTRPC();
  const service = useQuery(trpc.services.get.queryOptions({ serviceId }));
  if (!service.data) return null;
  return <ServiceDeployments serviceId={serviceId} environmentId={service.data.environmentId} />;
}
