"use client";

import { Alert, Anchor, Badge, Code, Loader, Table, Text } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import type { inferRouterOutputs } from "@trpc/server";
import Link from "next/link";
import { useEffect } from "react";
import type { AppRouter } from "../../server/api/root";
import { apiError } from "../errors";
import { useTRPC } from "../trpc";
import { shortSha } from "./format";
import type { Deployment } from "./steps";
import { shortId } from "./title";

type ServiceRelease = inferRouterOutputs<AppRouter>["deployments"]["summary"][number];

const OUTCOMES: Record<ServiceRelease["outcome"], { label: string; color: string }> = {
  live: { label: "Live", color: "green" },
  done: { label: "Done", color: "green" },
  failed: { label: "Failed", color: "red" },
  skipped: { label: "Not started", color: "gray" },
  canceled: { label: "Canceled", color: "yellow" },
  running: { label: "In progress", color: "blue" },
  pending: { label: "Pending", color: "gray" },
};

function Release({ release }: { release: ServiceRelease["release"] }) {
  if (!release) return <Text size="sm">None yet</Text>;
  const commit = release.commit && <Code title={release.commit}>{shortSha(release.commit)}</Code>;
  if (release.thisDeployment) {
    return (
      <Text size="sm" span>
        This deployment {commit}
      </Text>
    );
  }
  return (
    <Text size="sm" span>
      <Anchor component={Link} href={`/deployments/${release.deploymentId}`}>
        Deployment {shortId(release.deploymentId)}
      </Anchor>{" "}
      {commit} (earlier)
    </Text>
  );
}

/**
 * Which services a deployment left live on which release (issue 16): a stage that failed leaves
 * its neighbours live on the new release and the services after it on their earlier one.
 */
export function LiveReleases({ deployment }: { deployment: Deployment }) {
  const trpc = useTRPC();
  const query = useQuery(trpc.deployments.summary.queryOptions({ deploymentId: deployment.id }));
  const { refetch } = query;
  // Outcomes move with the deployment: read again when its status does.
  useEffect(() => {
    void refetch();
  }, [deployment.status, refetch]);

  if (query.isPending) return <Loader size="sm" role="status" aria-label="Loading the releases" />;
  if (query.error) {
    return (
      <Alert color="red" title="Could not load the releases">
        {apiError(query.error).message}
      </Alert>
    );
  }
  return (
    <Table.ScrollContainer minWidth={480}>
      <Table aria-label="Live releases">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Service</Table.Th>
            <Table.Th>Stage</Table.Th>
            <Table.Th>Outcome</Table.Th>
            <Table.Th>Live release</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {query.data.map((service) => (
            <Table.Tr key={service.serviceId}>
              <Table.Td>{service.name}</Table.Td>
              <Table.Td>{service.stage}</Table.Td>
              <Table.Td>
                <Badge variant="light" color={OUTCOMES[service.outcome].color}>
                  {OUTCOMES[service.outcome].label}
                </Badge>
              </Table.Td>
              <Table.Td>
                <Release release={service.release} />
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Table.ScrollContainer>
  );
}
