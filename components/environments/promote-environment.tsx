"use client";

import { Alert, Button, Code, Group, List, Loader, Modal, NativeSelect, Stack, Text } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { notifications } from "@mantine/notifications";
import { IconArrowBigUpLines } from "@tabler/icons-react";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import { useState } from "react";
import { apiError } from "../errors";
import { useTRPC } from "../trpc";
import { useInvalidate } from "../use-invalidate";
import { ApiErrorAlert } from "../api-error-alert";

type Environment = { id: string; name: string; mode: string };

/**
 * "Promote to…": deploys into another environment of the project what this one runs (staging
 * to production), after showing each service and the commit it will run there.
 */
export function PromoteEnvironmentButton({ environment, siblings }: { environment: Environment; siblings: Environment[] }) {
  const [opened, { open, close }] = useDisclosure();
  if (siblings.length === 0) return null;
  return (
    <>
      <Button variant="default" leftSection={<IconArrowBigUpLines size={16} />} onClick={open}>
        Promote to…
      </Button>
      {opened && <PromoteModal source={environment} targets={siblings} onClose={close} />}
    </>
  );
}

/** Production first: where a promotion most often goes. */
function defaultTarget(targets: Environment[]): string {
  return (targets.find((target) => target.mode === "PRODUCTION") ?? targets[0])!.id;
}

function PromoteModal({ source, targets, onClose }: { source: Environment; targets: Environment[]; onClose: () => void }) {
  const trpc = useTRPC();
  const router = useRouter();
  const invalidate = useInvalidate();
  const [targetId, setTargetId] = useState(() => defaultTarget(targets));
  const target = targets.find((candidate) => candidate.id === targetId)!;
  const input = { fromEnvironmentId: source.id, toEnvironmentId: targetId };
  // Read before anything is deployed: the confirmation says exactly what will run where.
  const plan = useQuery({ ...trpc.deployments.promotePlan.queryOptions(input), retry: false });
  const promote = useMutation(
    trpc.deployments.promote.mutationOptions({
      onSuccess: async ({ deployment, merged }) => {
        notifications.show({
          color: "green",
          message: merged ? `Added to ${target.name}'s queued deployment.` : `Promoting ${source.name} to ${target.name}: the deployment is under way.`,
        });
        await invalidate();
        onClose();
        router.push(`/deployments/${deployment.id}`);
      },
    }),
  );
  return (
    <Modal opened onClose={onClose} title={`Promote ${source.name}`} centered size="lg">
      <Stack>
        <NativeSelect
          label="Target environment"
          description="Its services are deployed at the commits their namesakes run here, with the target's own settings, variables and secrets."
          value={targetId}
          onChange={(event) => {
            setTargetId(event.currentTarget.value);
            promote.reset();
          }}
          data={targets.map((candidate) => ({ value: candidate.id, label: `${candidate.name} (${candidate.mode.toLowerCase()})` }))}
          data-autofocus
        />
        {plan.isLoading && (
          <Group gap="xs">
            <Loader size="xs" />
            <Text fz="sm">Reading what {source.name} runs…</Text>
          </Group>
        )}
        {plan.error && (
          <Alert color="yellow" role="alert" title="Nothing to promote">
            {apiError(plan.error).message}
          </Alert>
        )}
        {plan.data && (
          <Stack gap="xs">
            <Text fz="sm">
              This deploys to <strong>{plan.data.to.name}</strong> what <strong>{plan.data.from.name}</strong>&apos;s latest successful deployment ran:
            </Text>
            <List spacing={4} fz="sm" aria-label="What the promotion deploys">
              {plan.data.services.map((service) => (
                <List.Item key={service.serviceId}>
                  <strong>{service.name}</strong> at commit <Code title={service.commit}>{service.commit.slice(0, 7)}</Code>
                </List.Item>
              ))}
            </List>
            {plan.data.skipped.length > 0 && (
              <Text fz="sm" c="dimmed">
                Left as they are: {plan.data.skipped.join(", ")} (not built from git, or not run in {plan.data.from.name}).
              </Text>
            )}
          </Stack>
        )}
        <ApiErrorAlert error={promote.error} title="Not promoted" />
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            Cancel
          </Button>
          <Button onClick={() => promote.mutate(input)} loading={promote.isPending} disabled={!plan.data}>
            Promote to {target.name}
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}
