"use client";

import { Anchor, Badge, Group, Table, Text } from "@mantine/core";
import Link from "next/link";
import type { Outputs } from "../api-types";
import { CommitSha } from "../copy-button";
import { RelativeTime } from "../relative-time";
import { ServiceUrl } from "../services/service-url";
import { StatusBadge } from "../status-badge";

export type OverviewService = Outputs["organization"]["overview"]["projects"][number]["environments"][number]["services"][number];

/** The services of one environment: what runs, at which commit, how healthy, and where. */
export function ServicesTable({ services }: { services: OverviewService[] }) {
  return (
    <Table.ScrollContainer minWidth={760} className="stack-on-phone">
      <Table verticalSpacing="xs" highlightOnHover>
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Service</Table.Th>
            <Table.Th>Status</Table.Th>
            <Table.Th>Running commit</Table.Th>
            <Table.Th>Restarts</Table.Th>
            <Table.Th>Last deployment</Table.Th>
            <Table.Th>URL</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {services.map((service) => {
            return (
              <Table.Tr key={service.id}>
                <Table.Td data-label="Service">
                  <Group gap={6} wrap="nowrap">
                    <Anchor component={Link} href={`/services/${service.id}`} fw={600} fz="sm">
                      {service.name}
                    </Anchor>
                    {service.kind !== "APPLICATION" && (
                      <Badge size="xs" variant="outline" color="gray">
                        {service.kind.toLowerCase()}
                      </Badge>
                    )}
                  </Group>
                </Table.Td>
                <Table.Td data-label="Status">
                  <StatusBadge status={service.status} />
                </Table.Td>
                <Table.Td data-label="Running commit">
                  {service.runtime?.commit ? (
                    <CommitSha sha={service.runtime.commit} />
                  ) : (
                    <Text c="dimmed" fz="sm">
                      —
                    </Text>
                  )}
                </Table.Td>
                <Table.Td data-label="Restarts">
                  <Text fz="sm" c={service.runtime && service.runtime.restarts > 0 ? "orange" : "dimmed"}>
                    {service.runtime ? service.runtime.restarts : "—"}
                  </Text>
                </Table.Td>
                <Table.Td data-label="Last deployment">
                  {service.lastDeployment ? (
                    <Group gap={6}>
                      <StatusBadge status={service.lastDeployment.status} />
                      <Anchor component={Link} href={`/deployments/${service.lastDeployment.id}`} fz="sm" c="dimmed">
                        {service.lastDeployment.action.toLowerCase()} <RelativeTime value={service.lastDeployment.createdAt} />
                      </Anchor>
                    </Group>
                  ) : (
                    <Text c="dimmed" fz="sm">
                      Not deployed yet
                    </Text>
                  )}
                </Table.Td>
                <Table.Td data-label="URL">
                  {service.url ? (
                    <ServiceUrl url={service.url} serviceName={service.name} />
                  ) : (
                    <Text c="dimmed" fz="sm">
                      —
                    </Text>
                  )}
                </Table.Td>
              </Table.Tr>
            );
          })}
        </Table.Tbody>
      </Table>
    </Table.ScrollContainer>
  );
}
