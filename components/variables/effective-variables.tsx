"use client";

import { Badge, Group, Table, Text, Tooltip } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import type { Outputs } from "../api-types";
import { CopyableKey } from "../copy-button";
import { Section } from "../page-header";
import { useTRPC } from "../trpc";
import { JobOutputValue, VariableValue } from "./variables-panel";
import { ApiErrorAlert } from "../api-error-alert";

type Source = Outputs["variables"]["effective"][number]["source"];

const SOURCES: Record<Source, { label: string; color: string }> = {
  SERVICE: { label: "service", color: "indigo" },
  ENVIRONMENT: { label: "environment", color: "teal" },
  PROJECT: { label: "project", color: "orange" },
  BUILT_IN: { label: "built in", color: "gray" },
  JOB: { label: "job output", color: "cyan" },
};

export function SourceBadge({ source }: { source: Source }) {
  return (
    <Badge size="sm" variant="light" color={SOURCES[source].color}>
      {SOURCES[source].label}
    </Badge>
  );
}

/**
 * What the service receives when it next starts (a restart or a deploy), and where each value comes from (the
 * narrowest scope wins; what the environment's lifecycle jobs output wins over all, being newer).
 */
export function EffectiveVariables({ serviceId }: { serviceId: string }) {
  const trpc = useTRPC();
  const effective = useQuery(trpc.variables.effective.queryOptions({ serviceId }));
  return (
    <Section
      title="Effective variables"
      description="What the service receives at its next restart or deploy (what runs now keeps the values it started with): service values override environment ones, which override project ones; what lifecycle jobs output overrides them all."
    >
      <ApiErrorAlert error={effective.error} />
      {effective.data && (
        <Table.ScrollContainer minWidth={560} className="stack-on-phone">
          <Table verticalSpacing={6} aria-label="effective variables">
            <Table.Thead>
              <Table.Tr>
                <Table.Th w="30%">Key</Table.Th>
                <Table.Th>Value</Table.Th>
                <Table.Th w={220}>Source</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {effective.data.map((variable) => (
                <Table.Tr key={variable.key}>
                  <Table.Td data-label="Key">
                    <CopyableKey value={variable.key} />
                  </Table.Td>
                  <Table.Td data-label="Value">
                    {variable.job ? <JobOutputValue job={variable.job.name} /> : <VariableValue value={variable.value} secret={variable.secret} />}
                  </Table.Td>
                  <Table.Td data-label="Source">
                    <Group gap={6}>
                      <SourceBadge source={variable.source} />
                      {variable.overrides.length > 0 && (
                        <Tooltip
                          label={`Also set at ${variable.overrides.map((scope) => SOURCES[scope].label).join(" and ")} scope; this value wins`}
                          withArrow
                        >
                          <Text fz="xs" c="dimmed" tabIndex={0}>
                            overrides {variable.overrides.map((scope) => SOURCES[scope].label).join(", ")}
                          </Text>
                        </Tooltip>
                      )}
                    </Group>
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
    </Section>
  );
}
