"use client";

import { Alert, Loader } from "@mantine/core";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { apiError } from "../errors";
import { Section } from "../page-header";
import { useRoom } from "../realtime";
import { useTRPC } from "../trpc";
import { DeploymentActions } from "./deployment-actions";
import { DeploymentHistory } from "./deployment-history";

/** Keeps an environment's deployment list fresh: refetched on every change and after every (re)join; nothing while not `enabled`. */
export function useEnvironmentDeployments(environmentId: string, enabled = true) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const input = { environmentId, limit: 50 };
  const list = useQuery({ ...trpc.deployments.list.queryOptions(input), enabled });
  const refresh = () => void queryClient.invalidateQueries({ queryKey: trpc.deployments.list.queryKey(input) });
  useRoom(enabled ? `environment:${environmentId}` : null, {
    onDeploymentChanged: (change) => {
      if (change.environmentId === environmentId) refresh();
    },
    onJoined: refresh,
  });
  return list;
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
