"use client";

import { Alert, Button, Group, Modal, NativeSelect, Stack, TextInput } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { notifications } from "@mantine/notifications";
import { IconPlus } from "@tabler/icons-react";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import { useState } from "react";
import { ENVIRONMENT_MODES, type EnvironmentMode } from "../api-types";
import { apiError } from "../errors";
import { useTRPC } from "../trpc";
import { useInvalidate } from "../use-invalidate";
import { dnsLabelError } from "../validation";

export function CreateEnvironmentButton({ projectId, variant = "filled" }: { projectId: string; variant?: "filled" | "light" }) {
  const [opened, { open, close }] = useDisclosure();
  return (
    <>
      <Button leftSection={<IconPlus size={16} />} onClick={open} variant={variant}>
        New environment
      </Button>
      {opened && <CreateEnvironmentModal projectId={projectId} onClose={close} />}
    </>
  );
}

function CreateEnvironmentModal({ projectId, onClose }: { projectId: string; onClose: () => void }) {
  const trpc = useTRPC();
  const router = useRouter();
  const invalidate = useInvalidate();
  const clusters = useQuery(trpc.clusters.list.queryOptions({}));
  const [name, setName] = useState("");
  const [mode, setMode] = useState<EnvironmentMode>("DEVELOPMENT");
  const [clusterId, setClusterId] = useState<string>("");
  const [touched, setTouched] = useState(false);
  const defaultCluster = clusters.data?.find((cluster) => cluster.name === "local") ?? clusters.data?.[0];
  const chosenCluster = clusterId || defaultCluster?.id || "";
  const create = useMutation(
    trpc.environments.create.mutationOptions({
      onSuccess: async (environment) => {
        notifications.show({ color: "green", message: `Environment ${environment.name} created` });
        await invalidate();
        onClose();
        router.push(`/environments/${environment.id}`);
      },
    }),
  );
  const failure = create.error ? apiError(create.error) : null;
  const nameError = touched ? dnsLabelError(name) : null;
  return (
    <Modal opened onClose={onClose} title="New environment" centered>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          setTouched(true);
          if (dnsLabelError(name)) return;
          create.mutate({ projectId, name, mode, clusterId: chosenCluster || undefined });
        }}
      >
        <Stack>
          <TextInput
            label="Environment name"
            description="Lowercase letters, digits and inner hyphens, at most 40."
            placeholder="staging"
            value={name}
            onChange={(event) => setName(event.currentTarget.value)}
            onBlur={() => setTouched(true)}
            error={nameError ?? failure?.fields.name}
            maxLength={40}
            required
            data-autofocus
          />
          <NativeSelect
            label="Mode"
            value={mode}
            onChange={(event) => setMode(event.currentTarget.value as EnvironmentMode)}
            data={ENVIRONMENT_MODES.map((value) => ({ value, label: value.charAt(0) + value.slice(1).toLowerCase() }))}
            error={failure?.fields.mode}
          />
          <NativeSelect
            label="Cluster"
            description="Where this environment's services run."
            value={chosenCluster}
            onChange={(event) => setClusterId(event.currentTarget.value)}
            data={(clusters.data ?? []).map((cluster) => ({
              value: cluster.id,
              label: `${cluster.name} (${cluster.kind})${cluster.connected ? "" : " · disconnected"}`,
            }))}
            disabled={!clusters.data}
            error={failure?.fields.clusterId}
          />
          {failure && Object.keys(failure.fields).length === 0 && (
            <Alert color="red" role="alert">
              {failure.message}
            </Alert>
          )}
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" loading={create.isPending}>
              Create environment
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
