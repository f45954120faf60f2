"use client";

import { Alert, Loader } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { apiError } from "../errors";
import { Section } from "../page-header";
import { useTRPC } from "../trpc";
import { DeploymentHistory } from "./deployment-history";

/** An environment's deployment list (nothing while not `enabled`), kept fresh by the realtime stream (components/live-status.ts). */
export function useEnvironmentDeployments(environmentId: string, enabled = true) {
  const trpc = useTRPC();
  return useQuery({ ...trpc.deployments.list.queryOptions({ environmentId, limit: 50 }), enabled });
}

/** An environment's live deployment history (its Deploy, Restart and Stop buttons are in the page's header). */
export function EnvironmentDeployments({ environmentId }: { environmentId: string }) {
  const list = useEnvironmentDeployments(environmentId);
  const deployments = list.data ?? [];
  return (
    <Section title="Deployments">
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
