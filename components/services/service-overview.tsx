"use client";

import { Anchor, Card, Code, Group, SimpleGrid, Text } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import Link from "next/link";
import { CommitSha, CopyAction } from "../copy-button";
import { ServiceDeployments } from "../deployments/service-deployments";
import { findService, useOverview } from "../overview/use-overview";
import { RelativeTime } from "../relative-time";
import { StatusBadge } from "../status-badge";
import { useTRPC } from "../trpc";
import { DatabaseSettings, databaseConfigOf, engineLabel, useDatabaseVariables } from "./database-settings";
import { Fact } from "./fact";
import { JobFacts } from "./job-status";
import { ServiceUrl } from "./service-url";

/** How many deployments the Overview lists; the Deployments tab has them all. */
const RECENT_DEPLOYMENTS = 5;

const none = (
  <Text fz="sm" c="dimmed">
    —
  </Text>
);

/**
 * A service at a glance, the first tab of its page: how it runs now (status, commit or engine,
 * restarts, last deployment, URL), a database's connection, and its latest deployments.
 */
export function ServiceOverview({ serviceId }: { serviceId: string }) {
  const trpc = useTRPC();
  const service = useQuery(trpc.services.get.queryOptions({ serviceId }));
  const overview = useOverview();
  const found = findService(overview.data, serviceId);
  const { host: databaseHost } = useDatabaseVariables(service.data);
  if (!service.data || !found) return null;
  const current = service.data;
  const runtime = current.runtime;
  const last = found.service.lastDeployment;
  const database = databaseConfigOf(current);
  const address = database ? `${databaseHost ?? "…"}:${database.connection.port}` : null;

  return (
    <>
      <Card withBorder padding="lg" mb="xl">
        <SimpleGrid cols={{ base: 2, md: 5 }} spacing="lg">
          <Fact label="Status">
            <StatusBadge status={found.service.status} />
          </Fact>
          {database ? (
            <>
              <Fact label="Engine">
                <Text fz="sm">{engineLabel(database.engine)}</Text>
              </Fact>
              <Fact label="Address">
                <Group gap={4} wrap="nowrap">
                  <Code>{address}</Code>
                  {databaseHost && <CopyAction value={address!} label="address" size="xs" />}
                </Group>
              </Fact>
            </>
          ) : (
            <Fact label="Running commit">{runtime?.commit ? <CommitSha sha={runtime.commit} /> : none}</Fact>
          )}
          {current.kind !== "JOB" && (
            <Fact label="Restarts">
              <Text fz="sm">{runtime ? runtime.restarts : "—"}</Text>
              {runtime?.lastRestart && (
                <Text fz="xs" c={runtime.lastRestart.oomKilled ? "red" : "dimmed"}>
                  Last: <RelativeTime value={runtime.lastRestart.at} />, {runtime.lastRestart.reason}
                </Text>
              )}
            </Fact>
          )}
          <Fact label="Last deployment">
            {last ? (
              <Group gap={6}>
                <StatusBadge status={last.status} />
                <Anchor component={Link} href={`/deployments/${last.id}`} fz="sm">
                  <RelativeTime value={last.createdAt} />
                </Anchor>
              </Group>
            ) : (
              <Text fz="sm" c="dimmed">
                Never deployed
              </Text>
            )}
          </Fact>
          {(current.kind === "APPLICATION" || current.kind === "CONTAINER") && (
            <Fact label="URL">{found.service.url ? <ServiceUrl url={found.service.url} /> : none}</Fact>
          )}
          <JobFacts service={current} />
        </SimpleGrid>
      </Card>
      {database && <DatabaseSettings service={current} />}
      <ServiceDeployments serviceId={current.id} environmentId={current.environmentId} limit={RECENT_DEPLOYMENTS} />
    </>
  );
}
