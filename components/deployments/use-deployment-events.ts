"use client";

import { useQueryClient } from "@tanstack/react-query";
import { useCallback, useEffect, useRef, useState } from "react";
import { useRoom } from "../realtime";
import { useTRPC, useTRPCClient } from "../trpc";
import type { DeploymentEvent } from "./steps";

/**
 * A deployment's events, kept current: fetched "after" the last id we hold on mount, after every
 * (re)join of the `deployment:<id>` room (notifications sent while away are not replayed), and
 * whenever `deployment:changed` reports a newer event. Also refreshes the deployment itself
 * (status, commits, times) on each change.
 */
export function useDeploymentEvents(deploymentId: string) {
  const trpc = useTRPC();
  const client = useTRPCClient();
  const queryClient = useQueryClient();
  const [events, setEvents] = useState<DeploymentEvent[]>([]);
  const [error, setError] = useState<string | null>(null);
  const lastId = useRef(0);
  const running = useRef(false);
  const again = useRef(false);

  const fetchNewer = useCallback(async () => {
    if (running.current) {
      again.current = true;
      return;
    }
    running.current = true;
    try {
      do {
        again.current = false;
        const page = await client.deployments.events.query({ deploymentId, after: lastId.current });
        const fresh = page.filter((event) => event.id > lastId.current);
        if (fresh.length > 0) {
          lastId.current = fresh[fresh.length - 1]!.id;
          setEvents((held) => [...held, ...fresh]);
        }
        setError(null);
      } while (again.current);
    } catch (cause) {
      setError(cause instanceof Error ? cause.message : "Could not load the deployment's events");
    } finally {
      running.current = false;
    }
  }, [client, deploymentId]);

  const refreshDeployment = useCallback(
    () => void queryClient.invalidateQueries({ queryKey: trpc.deployments.get.queryKey({ deploymentId }) }),
    [queryClient, trpc, deploymentId],
  );

  const { connected } = useRoom(`deployment:${deploymentId}`, {
    onJoined: () => {
      void fetchNewer();
      refreshDeployment();
    },
    onDeploymentChanged: (change) => {
      if (change.deploymentId !== deploymentId) return;
      if (change.lastEventId > lastId.current) void fetchNewer();
      refreshDeployment();
    },
  });

  useEffect(() => {
    void fetchNewer();
  }, [fetchNewer]);

  // Offline, the rejoin fetches what was missed; the error matters only while connected.
  const retry = useCallback(() => void fetchNewer(), [fetchNewer]);
  return { events, error: connected ? error : null, connected, retry };
}
