"use client";

import { Button, Modal, NativeSelect, Stack, TextInput } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { notifications } from "@mantine/notifications";
import { IconPlus } from "@tabler/icons-react";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import { z } from "zod";
import { dnsLabel, environmentMode } from "../../engine/protocol/snapshot";
import { ENVIRONMENT_MODES, type EnvironmentMode } from "../api-types";
import { apiError } from "../errors";
import { apiSchemaResolver, useApiForm } from "../forms/use-api-form";
import { useTRPC } from "../trpc";
import { useInvalidate } from "../use-invalidate";
import { DialogFormFooter } from "../forms/dialog-form-footer";

/** `environments.create`'s input, by the protocol's rules. */
const schema = z.object({ name: dnsLabel, mode: environmentMode, clusterId: z.string().uuid().optional() });
type Values = { name: string; mode: EnvironmentMode; clusterId: string };
const PATHS = [
  ["name", "name"],
  ["mode", "mode"],
  ["clusterId", "clusterId"],
] as const;

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
  const { form, input, unmatchedServerError } = useApiForm<Values, "name" | "mode" | "clusterId">({
    initialValues: { name: "", mode: "DEVELOPMENT", clusterId: "" },
    validate: apiSchemaResolver(schema, (values: Values) => toInput(values), PATHS),
    paths: PATHS,
    failure,
  });
  const defaultCluster = clusters.data?.find((cluster) => cluster.name === "local") ?? clusters.data?.[0];
  /** No cluster chosen: the one named local, else the first (the server's default otherwise). */
  const toInput = (values: Values) => ({ projectId, name: values.name, mode: values.mode, clusterId: values.clusterId || defaultCluster?.id || undefined });
  return (
    <Modal opened onClose={onClose} title="New environment" centered>
      <form onSubmit={form.onSubmit((values) => create.mutate(toInput(values)))} noValidate>
        <Stack>
          <TextInput
            label="Environment name"
            description="Lowercase letters, digits and inner hyphens, at most 40."
            placeholder="staging"
            {...input("name")}
            maxLength={40}
            required
            data-autofocus
          />
          <NativeSelect
            label="Mode"
            {...input("mode")}
            data={ENVIRONMENT_MODES.map((value) => ({ value, label: value.charAt(0) + value.slice(1).toLowerCase() }))}
          />
          <NativeSelect
            label="Cluster"
            description="Where this environment's services run."
            {...input("clusterId")}
            value={form.getValues().clusterId || defaultCluster?.id || ""}
            data={(clusters.data ?? []).map((cluster) => ({
              value: cluster.id,
              label: `${cluster.name} (${cluster.kind})${cluster.connected ? "" : " · disconnected"}`,
            }))}
            disabled={!clusters.data}
          />
          <DialogFormFooter
            error={failure && unmatchedServerError && failure.message}
            onCancel={onClose}
            submit="Create environment"
            pending={create.isPending}
          />
        </Stack>
      </form>
    </Modal>
  );
}
