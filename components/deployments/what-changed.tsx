"use client";

import { Alert, Anchor, Badge, Card, Code, Group, Loader, Stack, Table, Text, Title } from "@mantine/core";
import { IconExternalLink } from "@tabler/icons-react";
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

type ServiceChanges = inferRouterOutputs<AppRouter>["deployments"]["changes"][number];

const CHANGE_COLORS = { added: "green", removed: "red", changed: "blue" } as const;

function ChangeBadge({ change }: { change: keyof typeof CHANGE_COLORS }) {
  return (
    <Badge size="xs" variant="light" color={CHANGE_COLORS[change]}>
      {change}
    </Badge>
  );
}

function CommitRange({ changes, detail }: { changes: ServiceChanges; detail: Deployment["commitDetails"][string] | undefined }) {
  const { commits } = changes;
  if (!commits) return null;
  if (!commits.to) return <Text size="sm">Commit: known once the engine has cloned the repository.</Text>;
  const to = (
    <Code title={commits.to} data-commit={commits.to}>
      {shortSha(commits.to)}
    </Code>
  );
  return (
    <Stack gap={2}>
      <Group gap={6} wrap="wrap" aria-label={`Commit range of ${changes.name}`}>
        <Text size="sm" span>
          Commit
        </Text>
        {commits.from && commits.from !== commits.to ? (
          <>
            <Code title={commits.from} data-commit={commits.from}>
              {shortSha(commits.from)}
            </Code>
            <Text size="sm" span>
              ..
            </Text>
            {to}
          </>
        ) : (
          to
        )}
        {commits.from === commits.to && (
          <Text size="sm" c="dimmed" span>
            (unchanged)
          </Text>
        )}
        {commits.compareUrl && (
          <Anchor href={commits.compareUrl} target="_blank" rel="noreferrer" size="sm">
            Compare on the provider <IconExternalLink size={12} aria-hidden />
          </Anchor>
        )}
      </Group>
      {detail && (
        <Text size="sm" c="dimmed">
          {detail.subject} · {detail.author}
        </Text>
      )}
    </Stack>
  );
}

function ConfigChanges({ changes }: { changes: ServiceChanges }) {
  if (changes.config.length === 0) return null;
  return (
    <Table.ScrollContainer minWidth={360}>
      <Table verticalSpacing={4} fz="sm" aria-label={`Configuration changed in ${changes.name}`}>
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Field</Table.Th>
            <Table.Th>Before</Table.Th>
            <Table.Th>After</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {changes.config.map((field) => (
            <Table.Tr key={field.path}>
              <Table.Td>
                <Code>{field.path}</Code> <ChangeBadge change={field.change} />
              </Table.Td>
              {field.secret ? (
                <Table.Td colSpan={2}>
                  <Text size="sm" c="dimmed">
                    secret, {field.change}
                  </Text>
                </Table.Td>
              ) : (
                <>
                  <Table.Td style={{ wordBreak: "break-all" }}>{field.from ?? "—"}</Table.Td>
                  <Table.Td style={{ wordBreak: "break-all" }}>{field.to ?? "—"}</Table.Td>
                </>
              )}
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Table.ScrollContainer>
  );
}

function VariableChanges({ changes }: { changes: ServiceChanges }) {
  if (changes.variables.length === 0) return null;
  return (
    <div>
      <Text size="sm" fw={500} mb={4}>
        Variables (keys only)
      </Text>
      <Group component="ul" gap="xs" m={0} p={0} style={{ listStyle: "none" }} aria-label={`Variables changed in ${changes.name}`}>
        {changes.variables.map((variable) => (
          <li key={variable.key} aria-label={`${variable.key} ${variable.change}`}>
            <Group gap={4} wrap="nowrap">
              <Code>{variable.key}</Code>
              <ChangeBadge change={variable.change} />
              {variable.secret && (
                <Badge size="xs" variant="outline" color="gray">
                  secret
                </Badge>
              )}
            </Group>
          </li>
        ))}
      </Group>
    </div>
  );
}

function ServiceCard({ changes, detail }: { changes: ServiceChanges; detail: Deployment["commitDetails"][string] | undefined }) {
  const nothing = changes.config.length === 0 && changes.variables.length === 0;
  return (
    <Card withBorder padding="md" radius="md" component="section" aria-label={`Changes of ${changes.name}`}>
      <Group justify="space-between" mb="xs" wrap="wrap">
        <Title order={3} fz="md" fw={600}>
          {changes.name}
        </Title>
        <Text size="xs" c="dimmed">
          {changes.previousDeploymentId ? (
            <>
              Since{" "}
              <Anchor component={Link} href={`/deployments/${changes.previousDeploymentId}`} inherit>
                deployment {shortId(changes.previousDeploymentId)}
              </Anchor>
              , its last successful one
            </>
          ) : (
            "Its first successful deployment: everything is new"
          )}
        </Text>
      </Group>
      <Stack gap="sm">
        <CommitRange changes={changes} detail={detail} />
        {changes.previousDeploymentId && nothing && (
          <Text size="sm" c="dimmed">
            No configuration or variable changed.
          </Text>
        )}
        {changes.previousDeploymentId && <ConfigChanges changes={changes} />}
        <VariableChanges changes={changes} />
      </Stack>
    </Card>
  );
}

/**
 * "What changed" on a deployment's page (issue 15, item 2): per service, the commit range since
 * its last successful deployment, the configuration fields and the variable keys that changed.
 * Computed by the server from the stored snapshots; values of variables never reach the page.
 */
export function WhatChanged({ deployment }: { deployment: Deployment }) {
  const trpc = useTRPC();
  const query = useQuery(trpc.deployments.changes.queryOptions({ deploymentId: deployment.id }));
  // The commit a branch resolves to is known once the clone ran, and what the deployment is
  // compared with can change while it runs: read again when its commits or status move.
  const { refetch } = query;
  const commits = Object.values(deployment.commits).join();
  useEffect(() => {
    void refetch();
  }, [deployment.status, commits, refetch]);

  if (query.isPending) return <Loader size="sm" role="status" aria-label="Loading what changed" />;
  if (query.error) {
    return (
      <Alert color="red" title="Could not load what changed">
        {apiError(query.error).message}
      </Alert>
    );
  }
  if (query.data.length === 0) {
    return (
      <Text size="sm" c="dimmed">
        A {deployment.action.toLowerCase()} changes no code, configuration or variable.
      </Text>
    );
  }
  return (
    <Stack gap="md" aria-label="What changed">
      {query.data.map((changes) => (
        <ServiceCard key={changes.serviceId} changes={changes} detail={deployment.commitDetails[changes.serviceId]} />
      ))}
    </Stack>
  );
}
