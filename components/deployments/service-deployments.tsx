"use client";

import { Alert, Anchor, Loader } from "@mantine/core";
import Link from "next/link";
import { apiError } from "../errors";
import { Section } from "../page-header";
import { DeploymentHistory } from "./deployment-history";
import { useEnvironmentDeployments } from "./environment-deployments";

/** The deployments that touched a service, newest first, live: its own and its environment's (serviceIds null). */
export function useServiceDeployments(serviceId: string, environmentId: string) {
  // The service (and so its environment) may still be loading: no request for an empty id.
  const list = useEnvironmentDeployments(environmentId, environmentId !== "");
  const deployments = (list.data ?? []).filter((deployment) => !deployment.serviceIds || deployment.serviceIds.includes(serviceId));
  return { list, deployments, deployedBefore: deployments.some((deployment) => deployment.action === "DEPLOY") };
}

/**
 * A service's deployment history (its Deploy, Restart and Stop buttons are in the service's
 * header): all of it on the Deployments tab, the newest `limit` on the Overview.
 */
export function ServiceDeployments({ serviceId, environmentId, limit }: { serviceId: string; environmentId: string; limit?: number }) {
  const { list, deployments } = useServiceDeployments(serviceId, environmentId);
  return (
    <Section
      title={limit ? "Recent deployments" : "Deployments"}
      actions={
        limit && deployments.length > limit ? (
          <Anchor component={Link} href={`/services/${serviceId}/deployments`} fz="sm">
            All {deployments.length} deployments
          </Anchor>
        ) : undefined
      }
    >
      {list.isPending ? (
        <Loader size="sm" role="status" aria-label="Loading deployments" />
      ) : list.isError ? (
        <Alert color="red" title="Could not load the deployments">
          {apiError(list.error).message}
        </Alert>
      ) : (
        <DeploymentHistory
          deployments={limit ? deployments.slice(0, limit) : deployments}
          emptyText="No deployments of this service yet."
          serviceId={serviceId}
          rollbackServiceIds={[serviceId]}
        />
      )}
    </Section>
  );
}
