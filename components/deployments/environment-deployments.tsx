"use client";

import { Alert, Loader } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { apiError } from "../errors";
import { Section } from "../page-header";
import { useTRPC } from "../trpc";
import { DeploymentActions } from "./deployment-actions";
import { DeploymentHistory } from "./deployment-history";

/** An environment's deployment list (nothing while not `enabled`), kept fresh by the realtime stream (components/live-status.ts). */
export function useEnvironmentDeployments(environmentId: string, enabled = true) {
  const trpc = useTRPC();
  return useQuery({ ...trpc.deployments.list.queryOptions({ environmentId, limit: 50 }), enabled });
}

/** An environment's Deploy / Redeploy, Restart and Stop buttons and its live deployment history. */
export function EnvironmentDeployments({ environmentId, environmentName }: { environmentId: string; environmentName?: string }) {
  const list = useEnvironmentDeployments(environmentId);
  const deployments = list.data ?? [];
  const deployedBefore = deployments.some((deployment) => deployment.action === "DEPLOY");
  return (
    <Section
      title="Deployments"
      actions={
        <DeploymentActions
          environmentId={environmentId}
          targetName={environmentName ? `the ${environmentName} environment` : "this environment"}
          deployedBefore={deployedBefore}
        />
      }
    >
      {list.isPending ? (
        <Loader size="sm" role="status" aria-label="Loading deployments" />
      ) : list.isError ? (
        <Alert color="red" title="Could not load the deployments">
          {apiError(list.error).message}
        </Alert>
      ) : (
        <DeploymentHistory deployments={deployments} emptyText="No deployments yet. Deploy to bring this environment's services up." />
      )}
    </Section>
  );
}
