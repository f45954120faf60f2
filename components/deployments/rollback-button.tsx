"use client";

import { Alert, Button, Code, Group, List, Modal, Stack, Text } from "@mantine/core";
import { IconArrowBackUp } from "@tabler/icons-react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import { useState } from "react";
import { Can } from "../auth/can";
import { apiError } from "../errors";
import { useTRPC } from "../trpc";
import { shortSha } from "./format";
import type { Deployment } from "./steps";
import { serviceName, shortId } from "./title";

/**
 * "Roll back to this" on an earlier successful deployment (issue 15, item 1): a confirmation that
 * names what gets redeployed (each service at the commit it ran), then a new deployment, whose page
 * opens. `serviceIds` narrows it to some of the deployment's services (a service's own history).
 */
export function RollbackButton({
  deployment,
  serviceIds,
  currentNames = {},
  size = "xs",
}: {
  deployment: Pick<Deployment, "id" | "environmentId" | "serviceIds" | "serviceNames" | "commits">;
  serviceIds?: string[];
  currentNames?: Record<string, string>;
  size?: "xs" | "sm";
}) {
  const [opened, setOpened] = useState(false);
  const trpc = useTRPC();
  const router = useRouter();
  const queryClient = useQueryClient();
  const rollback = useMutation(
    trpc.deployments.rollback.mutationOptions({
      onSuccess: async (created) => {
        await queryClient.invalidateQueries({ queryKey: trpc.deployments.list.queryKey({ environmentId: deployment.environmentId }) });
        setOpened(false);
        router.push(`/deployments/${created.id}`);
      },
    }),
  );
  const target = shortId(deployment.id);
  const services = serviceIds ?? deployment.serviceIds ?? Object.keys(deployment.serviceNames);
  const close = () => {
    if (rollback.isPending) return;
    setOpened(false);
    rollback.reset();
  };

  return (
    <Can role="DEVELOPER">
      <Button
        size={size}
        variant="default"
        leftSection={<IconArrowBackUp size={14} aria-hidden />}
        aria-label={`Roll back to this deployment, ${target}`}
        onClick={(event) => {
          // In the history, a row's click opens the deployment.
          event.stopPropagation();
          setOpened(true);
        }}
      >
        Roll back to this
      </Button>
      <Modal opened={opened} onClose={close} title={`Roll back to deployment ${target}?`} centered>
        <Stack gap="sm">
          <Text size="sm">
            A new deployment redeploys, as they ran in deployment <Code>{target}</Code>, with the same configuration and variables:
          </Text>
          <List size="sm" spacing={4} aria-label="What the rollback redeploys">
            {services.map((id) => {
              const commit = deployment.commits[id];
              return (
                <List.Item key={id}>
                  <Text span fw={500}>
                    {serviceName(id, deployment.serviceNames, currentNames)}
                  </Text>{" "}
                  {commit ? (
                    <>
                      at commit <Code title={commit}>{shortSha(commit)}</Code>
                    </>
                  ) : (
                    "with its image and configuration of then"
                  )}
                </List.Item>
              );
            })}
          </List>
          <Text size="sm" c="dimmed">
            The history keeps every deployment; the current release serves until the new one is healthy.
          </Text>
          {rollback.isError && (
            <Alert color="red" role="alert" title="Not rolled back">
              {apiError(rollback.error).message}
            </Alert>
          )}
          <Group justify="flex-end" gap="xs">
            <Button variant="default" onClick={close} disabled={rollback.isPending}>
              Cancel
            </Button>
            <Button
              leftSection={<IconArrowBackUp size={16} aria-hidden />}
              loading={rollback.isPending}
              onClick={() => rollback.mutate({ environmentId: deployment.environmentId, to: deployment.id, ...(serviceIds ? { serviceIds } : {}) })}
            >
              Roll back
            </Button>
          </Group>
        </Stack>
      </Modal>
    </Can>
  );
}
