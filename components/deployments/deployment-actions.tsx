"use client";

import { ActionIcon, Button, Group, Menu, Text } from "@mantine/core";
import { modals } from "@mantine/modals";
import { notifications } from "@mantine/notifications";
import { IconChevronDown, IconPlayerPlay, IconPlayerStop, IconRefresh, IconRocket } from "@tabler/icons-react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import { Can } from "../auth/can";
import { apiError } from "../errors";
import { useTRPC } from "../trpc";

type Action = "DEPLOY" | "STOP" | "RESTART";

/**
 * Deploy (or Redeploy), Stop and Restart for an environment, or for some of its services. Shown
 * to DEVELOPER and above only (the server refuses the others anyway). A request opens the
 * deployment's page, where its steps and logs run live.
 */
export function DeploymentActions({
  environmentId,
  serviceIds,
  targetName,
  deployedBefore,
}: {
  environmentId: string;
  serviceIds?: string[];
  /** What the buttons act on, for the confirmation ("the dev environment", "web"). */
  targetName: string;
  /** Whether a deploy ran before: the main button then says Redeploy. */
  deployedBefore: boolean;
}) {
  const trpc = useTRPC();
  const router = useRouter();
  const queryClient = useQueryClient();
  const create = useMutation(
    trpc.deployments.create.mutationOptions({
      onSuccess: async ({ deployment, merged }) => {
        await queryClient.invalidateQueries({ queryKey: trpc.deployments.list.queryKey({ environmentId }) });
        if (merged) {
          notifications.show({
            color: "blue",
            title: "Merged into the queued deployment",
            message: "A deployment of the same kind was still waiting; it now includes this request.",
          });
        }
        router.push(`/deployments/${deployment.id}`);
      },
      onError: (error) => notifications.show({ color: "red", title: "Not started", message: apiError(error).message }),
    }),
  );
  const run = (action: Action, options: { noCache?: boolean } = {}) =>
    create.mutate({ environmentId, action, ...(serviceIds ? { serviceIds } : {}), ...(options.noCache ? { noCache: true } : {}) });
  const pending = (action: Action) => create.isPending && create.variables?.action === action;

  const confirmStop = () =>
    modals.openConfirmModal({
      title: `Stop ${targetName}?`,
      children: <Text size="sm">Its services stop serving requests until the next deploy or restart. Data and configuration are kept.</Text>,
      labels: { confirm: "Stop", cancel: "Keep running" },
      confirmProps: { color: "red" },
      onConfirm: () => run("STOP"),
    });

  return (
    <Can role="DEVELOPER">
      <Group gap="xs">
        <Button
          leftSection={deployedBefore ? <IconRocket size={16} aria-hidden /> : <IconPlayerPlay size={16} aria-hidden />}
          onClick={() => run("DEPLOY")}
          loading={pending("DEPLOY")}
          disabled={create.isPending}
        >
          {deployedBefore ? "Redeploy" : "Deploy"}
        </Button>
        {deployedBefore ? (
          // A build cache exists only once something was built: only then can a deploy skip it.
          <Menu position="bottom-end">
            <Menu.Target>
              <ActionIcon variant="default" size="input-sm" aria-label="More ways to redeploy" disabled={create.isPending}>
                <IconChevronDown size={16} aria-hidden />
              </ActionIcon>
            </Menu.Target>
            <Menu.Dropdown>
              <Menu.Item leftSection={<IconRocket size={14} aria-hidden />} onClick={() => run("DEPLOY", { noCache: true })}>
                Redeploy without the build cache
              </Menu.Item>
            </Menu.Dropdown>
          </Menu>
        ) : null}
        <Button
          variant="default"
          leftSection={<IconRefresh size={16} aria-hidden />}
          onClick={() => run("RESTART")}
          loading={pending("RESTART")}
          disabled={create.isPending}
        >
          Restart
        </Button>
        <Button
          variant="default"
          color="red"
          leftSection={<IconPlayerStop size={16} aria-hidden />}
          onClick={confirmStop}
          loading={pending("STOP")}
          disabled={create.isPending}
        >
          Stop
        </Button>
      </Group>
    </Can>
  );
}
