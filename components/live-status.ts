"use client";

import { useQueryClient } from "@tanstack/react-query";
import { useEffect } from "react";
import type { Socket } from "socket.io-client";
import type { DeploymentChanged, ServiceChanged, UiClientEvents, UiServerEvents } from "../server/realtime/ui-protocol";
import { useTRPC } from "./trpc";

/**
 * One truth, live on every page (issue 15, item 4). Every status the dashboard shows comes from
 * the API, derived on the server (server/overview/live-status.ts, server/deployments/status.ts);
 * the server tells each socket of an organization when one may have changed, and this re-reads
 * every query that shows it, whichever page is open. After a reconnect all of them are re-read,
 * since what was said while disconnected is not replayed.
 */
export function useLiveStatus(socket: Socket<UiServerEvents, UiClientEvents> | null) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  useEffect(() => {
    if (!socket) return;
    const refetch = (queryKey: readonly unknown[]) => void queryClient.invalidateQueries({ queryKey });
    const onDeployment = ({ environmentId, deploymentId }: DeploymentChanged) => {
      refetch(trpc.organization.overview.queryKey());
      refetch(trpc.deployments.list.queryKey({ environmentId }));
      refetch(trpc.deployments.get.queryKey({ deploymentId }));
      refetch(trpc.environments.get.queryKey({ environmentId }));
      // A service's page reads its own row too (a finished DELETE of it makes it missing).
      refetch(trpc.services.get.pathKey());
    };
    const onService = ({ serviceId }: ServiceChanged) => {
      refetch(trpc.organization.overview.queryKey());
      refetch(trpc.services.get.queryKey({ serviceId }));
    };
    // Also at the first connect: a change between the page's first read and the socket joining its rooms is not lost.
    const onConnect = () => {
      for (const key of [trpc.organization.overview.pathKey(), trpc.deployments.pathKey(), trpc.environments.get.pathKey(), trpc.services.get.pathKey()]) {
        refetch(key);
      }
    };
    socket.on("deployment:changed", onDeployment);
    socket.on("service:changed", onService);
    socket.on("connect", onConnect);
    return () => {
      socket.off("deployment:changed", onDeployment);
      socket.off("service:changed", onService);
      socket.off("connect", onConnect);
    };
  }, [socket, trpc, queryClient]);
}
