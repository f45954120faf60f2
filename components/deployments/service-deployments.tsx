"use client";

import { Alert, Loader } from "@mantine/core";
import { apiError } from "../errors";
import { Section } from "../page-header";
import { DeploymentActions } from "./deployment-actions";
import { DeploymentHistory } from "./deployment-history";
import { useEnvironmentDeployments } from "./environment-deployments";

/** A service's Deploy / Redeploy, Restart and Stop buttons (acting on it alone) and the deployments that touched it. */
export function ServiceDeployments({ serviceId, environmentId, serviceName }: { serviceId: string; environmentId: string; serviceName?: string }) {
  const list = useEnvironmentDeployments(environmentId);
  // Deployments of the whole environment (serviceIds null) touch this service too.
  const deployments = (list.data ?? []).filter((deployment) => !deployment.serviceIds || deployment.serviceIds.includes(serviceId));
  const deployedBefore = deployments.some((deployment) => deployment.action === "DEPLOY");
  return (
    <Section
      title="Deployments"
      actions={
        <DeploymentActions environmentId={environmentId} serviceIds={[serviceId]} targetName={serviceName ?? "this service"} deployedBefore={deployedBefore} />
      }
    >
      {list.isPending ? (
        <Loader size="sm" aria-label="Loading deployments" />
      ) : list.isError ? (
        <Alert color="red" title="Could not load the deployments">
          {apiError(list.error).message}
        </Alert>
      ) : (
        <DeploymentHistory deployments={deployments} emptyText="No deployments of this service yet." rollbackServiceIds={[serviceId]} />
      )}
    </Section>
  );
}
