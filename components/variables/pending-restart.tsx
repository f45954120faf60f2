"use client";

import { Alert, Button, Group, Text } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { IconRefresh } from "@tabler/icons-react";
import { useMutation, useQuery } from "@tanstack/react-query";
import type { VariableScope } from "../api-types";
import { apiError } from "../errors";
import { useTRPC } from "../trpc";
import { useInvalidate } from "../use-invalidate";

/**
 * Said after a variable changes: what runs keeps the values it started with until a restart or a
 * deploy re-resolves them (README, "Deploy or restart?"), so the change is not live yet. A
 * service's or an environment's change can be applied at once with a restart (no rebuild); a
 * project's reaches each of its environments' services at their own restart.
 */
export function PendingRestart({ scope, targetId, change, onDone }: { scope: VariableScope; targetId: string; change: string; onDone: () => void }) {
  const trpc = useTRPC();
  const invalidate = useInvalidate();
  // A service's restart is a deployment of its environment, limited to it.
  const service = useQuery({ ...trpc.services.get.queryOptions({ serviceId: targetId }), enabled: scope === "SERVICE" });
  const environmentId = scope === "ENVIRONMENT" ? targetId : service.data?.environmentId;
  const restart = useMutation(
    trpc.deployments.create.mutationOptions({
      onSuccess: async () => {
        notifications.show({
          color: "green",
          message:
            scope === "SERVICE"
              ? "Restart requested: the service starts again with its new variables."
              : "Restart requested: the environment's services start again with their new variables.",
        });
        await invalidate();
        onDone();
      },
    }),
  );
  const what =
    scope === "SERVICE"
      ? "The running service keeps its old values"
      : scope === "ENVIRONMENT"
        ? "The environment's running services keep their old values"
        : "The project's running services keep their old values";
  return (
    <Alert color="yellow" variant="light" mt="sm" title={change} withCloseButton closeButtonLabel="Dismiss" onClose={onDone} role="status">
      <Group justify="space-between" wrap="wrap" gap="xs">
        <Text fz="sm">
          {what} until {scope === "PROJECT" ? "each one's" : "the"} next restart or deploy
          {scope === "PROJECT" ? " (restart them environment by environment)" : ""}.
        </Text>
        {environmentId && (
          <Button
            size="xs"
            variant="default"
            leftSection={<IconRefresh size={14} />}
            loading={restart.isPending}
            onClick={() => restart.mutate({ environmentId, action: "RESTART", ...(scope === "SERVICE" ? { serviceIds: [targetId] } : {}) })}
          >
            Restart now
          </Button>
        )}
      </Group>
      {restart.error && (
        <Text fz="sm" c="red" mt={4}>
          Not restarted: {apiError(restart.error).message}
        </Text>
      )}
    </Alert>
  );
}
