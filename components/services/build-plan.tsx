"use client";

import { Alert, Badge, Button, Card, Code, Group, List, Loader, Stack, Text } from "@mantine/core";
import { IconRefresh } from "@tabler/icons-react";
import { useQuery } from "@tanstack/react-query";
import type { Outputs } from "../api-types";
import { apiError } from "../errors";
import { Section } from "../page-header";
import { useTRPC } from "../trpc";
import { Fact } from "./fact";

type Plan = Outputs["services"]["plan"];

/**
 * The service's build plan, read-only: what a deployment would detect in its branch now, why, and
 * the commands it would run (issue 14). Read from the repository on demand of this page; the
 * settings above override it (install, build and start commands, Node and Python versions, output directory).
 */
export function BuildPlanPanel({ serviceId }: { serviceId: string }) {
  const trpc = useTRPC();
  // Reading the branch costs a fetch from the git host: once per visit, again on request.
  const plan = useQuery({ ...trpc.services.plan.queryOptions({ serviceId }), retry: false, staleTime: 60_000, refetchOnWindowFocus: false });
  return (
    <Section
      title="Build plan"
      description="How the next deployment would build and start this service, detected in its branch now. The settings above override it."
      actions={
        <Button variant="default" size="xs" leftSection={<IconRefresh size={14} />} loading={plan.isFetching} onClick={() => void plan.refetch()}>
          Read again
        </Button>
      }
    >
      <Card withBorder padding="lg" aria-label="Build plan">
        {plan.isPending ? (
          <Group gap="xs">
            <Loader size="xs" />
            <Text fz="sm" c="dimmed">
              Reading the branch…
            </Text>
          </Group>
        ) : plan.isError ? (
          <Text fz="sm" c="dimmed" role="status">
            No plan: {apiError(plan.error).message}
          </Text>
        ) : (
          <PlanView plan={plan.data} />
        )}
      </Card>
    </Section>
  );
}

function PlanView({ plan }: { plan: Plan }) {
  if (plan.status === "unreadable") {
    return (
      <Text fz="sm" c="dimmed" role="status">
        Not read from here: {plan.error}. Each deployment&apos;s build log shows its plan.
      </Text>
    );
  }
  if (plan.status === "undetected") {
    return (
      <Alert color="yellow" title={`Nothing to deploy detected at ${plan.commit?.slice(0, 7) ?? "the branch"}`} role="alert">
        {plan.error}
      </Alert>
    );
  }
  return (
    <Stack gap="md">
      <Group gap="sm">
        <Badge variant="light" size="lg">
          {plan.framework}
        </Badge>
        <Text fz="sm" c="dimmed">
          at commit <Code>{plan.commit?.slice(0, 7)}</Code>
        </Text>
      </Group>
      {plan.reasons.length > 0 && (
        <Fact label="Because">
          <List size="sm">
            {plan.reasons.map((reason) => (
              <List.Item key={reason}>{reason}</List.Item>
            ))}
          </List>
        </Fact>
      )}
      {plan.toolchains.map((toolchain) => (
        <Fact key={toolchain.name} label={toolchain.name}>
          {toolchain.version === null ? (
            <Text fz="sm">The engine&apos;s default (none named)</Text>
          ) : (
            <Text fz="sm">
              <Code>{toolchain.version}</Code>, from {toolchain.source}
            </Text>
          )}
        </Fact>
      ))}
      <Fact label="Install and build">
        {plan.steps.length === 0 ? (
          <Text fz="sm">Nothing to build</Text>
        ) : (
          <List type="ordered" size="sm">
            {plan.steps.map((step, index) => (
              <List.Item key={index}>
                <Code>{step.command}</Code>
                {step.directory !== "." && (
                  <Text span fz="xs" c="dimmed">
                    {" "}
                    at the repository root
                  </Text>
                )}
              </List.Item>
            ))}
          </List>
        )}
      </Fact>
      <Fact label="Start">
        {plan.start.type === "static" ? (
          <Text fz="sm">
            The static server serves <Code>{plan.start.directory === "." ? "the app's files" : `${plan.start.directory}/`}</Code>
            {plan.start.spa ? ", answering client routes with index.html" : ", with a 404 for unknown paths"}; hashed assets cached for a year, compressed.
          </Text>
        ) : plan.start.type === "command" ? (
          <Code>{plan.start.command}</Code>
        ) : null}
      </Fact>
    </Stack>
  );
}
