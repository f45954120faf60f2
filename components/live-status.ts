"use client";

import { hashKey, useQueryClient, type QueryClient } from "@tanstack/react-query";
import { useEffect } from "react";
import type { Socket } from "socket.io-client";
import type { DeploymentChanged, ServiceChanged, UiClientEvents, UiServerEvents } from "../server/realtime/ui-protocol";
import type { Outputs } from "./api-types";
import { useTRPC } from "./trpc";

type Overview = Outputs["organization"]["overview"];
type Trpc = ReturnType<typeof useTRPC>;

/** The overview's tree with the statuses a change carries, as the server derived them. */
function patchOverview(
  overview: Overview,
  change: {
    environmentId: string;
    environmentStatus?: DeploymentChanged["environmentStatus"];
    services: ServiceChanged[] | DeploymentChanged["services"];
  },
): Overview {
  const statusOf = new Map(change.services.map((service) => [service.serviceId, service.status]));
  return {
    projects: overview.projects.map((project) => ({
      ...project,
      environments: project.environments.map((environment) =>
        environment.id !== change.environmentId
          ? environment
          : {
              ...environment,
              status: change.environmentStatus ?? environment.status,
              // A service's last deployment keeps what that deployment did to the service, not
              // the deployment's own status (one that failed may have left it live): the re-read
              // that follows brings the new one.
              services: environment.services.map((service) => ({ ...service, status: statusOf.get(service.id) ?? service.status })),
            },
      ),
    })),
  };
}

/**
 * Shows a change's statuses in every cached query at once (they are the server's, carried by the
 * message), then re-reads those queries for everything else. Re-reading also cancels a read
 * already on its way, whose older answer must not land after the patch.
 */
function applyDeploymentChange(queryClient: QueryClient, trpc: Trpc, change: DeploymentChanged) {
  const { environmentId, deploymentId, status } = change;
  queryClient.setQueriesData<Overview>({ queryKey: trpc.organization.overview.queryKey() }, (overview) =>
    overview ? patchOverview(overview, { environmentId, environmentStatus: change.environmentStatus, services: change.services }) : overview,
  );
  queryClient.setQueriesData<Outputs["deployments"]["list"]>({ queryKey: trpc.deployments.list.queryKey({ environmentId }) }, (list) =>
    list?.map((deployment) => (deployment.id === deploymentId ? { ...deployment, status } : deployment)),
  );
  queryClient.setQueriesData<Outputs["deployments"]["get"]>({ queryKey: trpc.deployments.get.queryKey({ deploymentId }) }, (deployment) =>
    deployment ? { ...deployment, status } : deployment,
  );
  for (const queryKey of [
    trpc.organization.overview.queryKey(),
    trpc.deployments.list.queryKey({ environmentId }),
    trpc.deployments.get.queryKey({ deploymentId }),
    trpc.environments.get.queryKey({ environmentId }),
    // A service's page reads its own row too (a finished DELETE of it makes it missing).
    trpc.services.get.pathKey(),
  ]) {
    void queryClient.invalidateQueries({ queryKey });
  }
}

function applyServiceChange(queryClient: QueryClient, trpc: Trpc, change: ServiceChanged) {
  queryClient.setQueriesData<Overview>({ queryKey: trpc.organization.overview.queryKey() }, (overview) =>
    overview ? patchOverview(overview, { environmentId: change.environmentId, services: [change] }) : overview,
  );
  void queryClient.invalidateQueries({ queryKey: trpc.organization.overview.queryKey() });
  void queryClient.invalidateQueries({ queryKey: trpc.services.get.queryKey({ serviceId: change.serviceId }) });
}

/**
 * One truth, live on every page (issue 15, item 4). Every status the dashboard shows is derived
 * on the server (server/overview/live-status.ts, server/deployments/status.ts); the server tells
 * each socket of an organization when one changed, with the new statuses, and this shows them in
 * every query that holds them, whichever page is open, then re-reads those queries. After a
 * (re)connect all of them are re-read, since what was said while disconnected is not replayed,
 * and after a `realtime:resync` (the server's own notifications had a gap) too.
 */
export function useLiveStatus(socket: Socket<UiServerEvents, UiClientEvents> | null) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  useEffect(() => {
    if (!socket) return;
    const onDeployment = (change: DeploymentChanged) => applyDeploymentChange(queryClient, trpc, change);
    const onService = (change: ServiceChanged) => applyServiceChange(queryClient, trpc, change);
    // Also at the first connect: a change between the page's first read and the socket joining is not lost.
    const onConnect = () => {
      for (const queryKey of [trpc.organization.overview.pathKey(), trpc.deployments.pathKey(), trpc.environments.get.pathKey(), trpc.services.get.pathKey()]) {
        void queryClient.invalidateQueries({ queryKey });
      }
    };
    socket.on("deployment:changed", onDeployment);
    socket.on("service:changed", onService);
    socket.on("connect", onConnect);
    socket.on("realtime:resync", onConnect);
    const stopFollowing = followOrganization(queryClient, trpc, socket);
    return () => {
      socket.off("deployment:changed", onDeployment);
      socket.off("service:changed", onService);
      socket.off("connect", onConnect);
      socket.off("realtime:resync", onConnect);
      stopFollowing();
    };
  }, [socket, trpc, queryClient]);
}

/**
 * A socket hears the organization it connected in. Switching organizations changes the cookie
 * and re-reads `organization.whoami` (components/shell/dashboard-shell.tsx): when its answer
 * names another organization, the socket connects again, as a member of that one.
 */
function followOrganization(queryClient: QueryClient, trpc: Trpc, socket: Socket<UiServerEvents, UiClientEvents>) {
  const whoami = hashKey(trpc.organization.whoami.queryKey({}));
  let organizationId: string | undefined;
  return queryClient.getQueryCache().subscribe((event) => {
    if (event.type !== "updated" || event.action.type !== "success" || event.query.queryHash !== whoami) return;
    const next = (event.query.state.data as Outputs["organization"]["whoami"] | undefined)?.organizationId;
    if (organizationId && next && next !== organizationId) socket.disconnect().connect();
    organizationId = next ?? organizationId;
  });
}
