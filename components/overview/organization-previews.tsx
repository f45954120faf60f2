"use client";

import { Anchor, Card, Table, Text, Title } from "@mantine/core";
import Link from "next/link";
import { RelativeTime } from "../relative-time";
import { EnvironmentStatus } from "./environment-status";
import type { previewEnvironments } from "./overview-filters";

/** Every preview environment of the organization (one per pull request), whichever project it belongs to. */
export function OrganizationPreviews({ previews }: { previews: ReturnType<typeof previewEnvironments> }) {
  if (previews.length === 0) return null;
  return (
    <Card withBorder padding="lg" mb="xl" component="section" aria-labelledby="preview-environments">
      <Title order={2} fz="lg" mb="sm" id="preview-environments">
        Preview environments
      </Title>
      <Table.ScrollContainer minWidth={640}>
        <Table verticalSpacing="xs" aria-label="Preview environments">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Environment</Table.Th>
              <Table.Th>Pull request</Table.Th>
              <Table.Th>Preview of</Table.Th>
              <Table.Th>Status</Table.Th>
              <Table.Th>Expires</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {previews.map(({ project, environment, preview }) => (
              <Table.Tr key={environment.id}>
                <Table.Td>
                  <Anchor component={Link} href={`/environments/${environment.id}`} fz="sm" fw={600}>
                    {project.name} / {environment.name}
                  </Anchor>
                </Table.Td>
                <Table.Td>
                  <Text fz="sm">
                    #{preview.number} · {preview.headBranch}
                    {preview.closedAt ? " (closed)" : ""}
                  </Text>
                </Table.Td>
                <Table.Td>
                  {environment.clonedFrom ? (
                    <Anchor component={Link} href={`/environments/${environment.clonedFrom.id}`} fz="sm">
                      {environment.clonedFrom.name}
                    </Anchor>
                  ) : (
                    <Text fz="sm" c="dimmed">
                      —
                    </Text>
                  )}
                </Table.Td>
                <Table.Td>
                  <EnvironmentStatus status={environment.status} inProgress={environment.inProgress} />
                </Table.Td>
                <Table.Td>
                  {environment.expiresAt ? (
                    <RelativeTime value={environment.expiresAt} />
                  ) : (
                    <Text fz="sm" c="dimmed">
                      —
                    </Text>
                  )}
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Table.ScrollContainer>
    </Card>
  );
}
