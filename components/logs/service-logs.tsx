"use client";

import { Text } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { useCallback } from "react";
import { PageState } from "../not-found";
import { useTRPC, useTRPCClient } from "../trpc";
import { LogViewer } from "./log-viewer";
import type { FetchLogPage } from "./use-log-stream";

/** The first screen of a service's runtime log: its newest lines, then everything as it is written. */
const INITIAL_TAIL = 1000;

/** The Logs tab of a service: its runtime output (what its processes print), live. */
export function ServiceLogs({ serviceId }: { serviceId: string }) {
  const trpc = useTRPC();
  const client = useTRPCClient();
  const query = useQuery(trpc.services.get.queryOptions({ serviceId }));
  const fetchPage: FetchLogPage = useCallback(
    (request) =>
      client.deployments.logs.query("tail" in request ? { serviceId, tail: request.tail } : { serviceId, after: request.after, limit: request.limit }),
    [client, serviceId],
  );
  const service = query.data;
  if (!service) return <PageState loading={query.isPending} error={query.error} missing={!query.isPending && !query.error} what="service" />;

  return (
    <>
      <Text size="sm" c="dimmed" mb="sm">
        Runtime output of the service&apos;s processes. Build and deploy output is on each deployment&apos;s page.
      </Text>
      <LogViewer
        key={serviceId}
        room={`service:${serviceId}`}
        fetchPage={fetchPage}
        initialTail={INITIAL_TAIL}
        label="Runtime logs"
        fileName={`${service.name}-runtime`}
        height="calc(100vh - 340px)"
        emptyText="No output yet. Lines appear here as the service writes them."
      />
    </>
  );
}
