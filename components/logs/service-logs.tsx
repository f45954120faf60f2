"use client";

import { Text } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { useCallback } from "react";
import { PageState } from "../not-found";
import { findService, useOverview } from "../overview/use-overview";
import { environmentCrumbs, PageHeader } from "../page-header";
import { StatusBadge } from "../status-badge";
import { useTRPC, useTRPCClient } from "../trpc";
import { LogViewer } from "./log-viewer";
import type { FetchLogPage } from "./use-log-stream";

/** The first screen of a service's runtime log: its newest lines, then everything as it is written. */
const INITIAL_TAIL = 1000;

/** A service's runtime output (what its processes print), live. */
export function ServiceLogs({ serviceId }: { serviceId: string }) {
  const trpc = useTRPC();
  const client = useTRPCClient();
  const query = useQuery(trpc.services.get.queryOptions({ serviceId }));
  const overview = useOverview();
  const place = findService(overview.data, serviceId);
  const fetchPage: FetchLogPage = useCallback(
    (request) =>
      client.deployments.logs.query("tail" in request ? { serviceId, tail: request.tail } : { serviceId, after: request.after, limit: request.limit }),
    [client, serviceId],
  );
  const service = query.data;
  if (!service) return <PageState loading={query.isPending} error={query.error} missing={!query.isPending && !query.error} what="service" />;

  return (
    <>
      <PageHeader
        title={`Logs of ${service.name}`}
        crumbs={[...environmentCrumbs(place), { label: service.name, href: `/services/${service.id}` }, { label: "Logs" }]}
        badges={place ? <StatusBadge status={place.service.status} size="md" /> : undefined}
        description={
          <Text span size="sm" c="dimmed">
            Runtime output of the service&apos;s processes. Build and deploy output is on each deployment&apos;s page.
          </Text>
        }
      />
      <LogViewer
        key={serviceId}
        room={`service:${serviceId}`}
        fetchPage={fetchPage}
        initialTail={INITIAL_TAIL}
        label="Runtime logs"
        fileName={`${service.name}-runtime`}
        height="calc(100vh - 260px)"
        emptyText="No output yet. Lines appear here as the service writes them."
      />
    </>
  );
}
