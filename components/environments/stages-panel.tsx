"use client";

import { ActionIcon, Alert, Badge, Button, Card, Group, NativeSelect, Stack, Text, TextInput, Title, Tooltip } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { IconArrowDown, IconArrowUp, IconPlus, IconTrash } from "@tabler/icons-react";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import type { inferRouterOutputs } from "@trpc/server";
import { z } from "zod";
import { DEFAULT_STAGE, newStageName } from "../../engine/protocol/snapshot";
import type { AppRouter } from "../../server/api/root";
import { useCan } from "../auth/can";
import { apiError } from "../errors";
import { apiSchemaResolver, useApiForm } from "../forms/use-api-form";
import { Section } from "../page-header";
import { useTRPC } from "../trpc";
import { useInvalidate } from "../use-invalidate";

type Stage = inferRouterOutputs<AppRouter>["stages"]["list"][number];

/** `stages.add`'s name, by the protocol's rule. */
const schema = z.object({ name: newStageName });
type Values = { name: string };
const PATHS = [["name", "name"]] as const;

/**
 * The environment's deployment stages (issue 16): a stage deploys once the one before it is done,
 * its services side by side. Stages move up and down and services change stage with buttons and
 * selects, so that everything works from the keyboard.
 */
export function StagesPanel({ environmentId }: { environmentId: string }) {
  const trpc = useTRPC();
  const query = useQuery(trpc.stages.list.queryOptions({ environmentId }));
  const canEdit = useCan("DEVELOPER");
  // Each stage added gives a fresh form: empty, nothing left of the previous one's state.
  const [added, setAdded] = useState(0);
  return (
    <Section
      title="Stages"
      description="A stage deploys once the one before it is done; its services deploy side by side. Services in no other stage are in default, which deploys first."
    >
      {query.error ? (
        <Alert color="red" title="Could not load the stages">
          {apiError(query.error).message}
        </Alert>
      ) : (
        <Stack gap="sm">
          {query.data?.map((stage) => (
            <StageCard key={stage.id ?? DEFAULT_STAGE} stage={stage} stages={query.data} canEdit={canEdit} />
          ))}
          {canEdit && <AddStageForm key={added} environmentId={environmentId} onAdded={() => setAdded((count) => count + 1)} />}
        </Stack>
      )}
    </Section>
  );
}

function useStageMutations() {
  const trpc = useTRPC();
  const invalidate = useInvalidate();
  const onError = (error: unknown) => notifications.show({ color: "red", title: "The stages did not change", message: apiError(error).message });
  return {
    move: useMutation(trpc.stages.move.mutationOptions({ onSuccess: invalidate, onError })),
    remove: useMutation(
      trpc.stages.remove.mutationOptions({
        onSuccess: async (removed) => {
          const moved = removed.services.length > 0 ? `: ${removed.services.join(", ")} moved to ${DEFAULT_STAGE}` : "";
          notifications.show({ message: `Stage ${removed.name} removed${moved}` });
          await invalidate();
        },
        onError,
      }),
    ),
    setService: useMutation(trpc.stages.setService.mutationOptions({ onSuccess: invalidate, onError })),
  };
}

function StageCard({ stage, stages, canEdit }: { stage: Stage; stages: Stage[]; canEdit: boolean }) {
  const { move, remove, setService } = useStageMutations();
  const last = stages.length - 1;
  const busy = move.isPending || remove.isPending;
  const id = stage.id;
  return (
    <Card withBorder padding="sm" component="section" aria-label={`Stage ${stage.name}`}>
      <Group justify="space-between" wrap="nowrap">
        <Group gap="xs">
          <Badge variant="light" color="gray" aria-label={`Position ${stage.position + 1}`}>
            {stage.position + 1}
          </Badge>
          <Title order={3} fz="md" fw={600}>
            {stage.name}
          </Title>
          {id === null && (
            <Text size="xs" c="dimmed">
              services in no other stage
            </Text>
          )}
        </Group>
        {canEdit && id !== null && (
          <Group gap={4} wrap="nowrap">
            <Tooltip label="Deploy earlier">
              <ActionIcon
                variant="subtle"
                aria-label={`Move stage ${stage.name} up`}
                disabled={busy || stage.position <= 1}
                onClick={() => move.mutate({ stageId: id, position: stage.position - 1 })}
              >
                <IconArrowUp size={16} />
              </ActionIcon>
            </Tooltip>
            <Tooltip label="Deploy later">
              <ActionIcon
                variant="subtle"
                aria-label={`Move stage ${stage.name} down`}
                disabled={busy || stage.position >= last}
                onClick={() => move.mutate({ stageId: id, position: stage.position + 1 })}
              >
                <IconArrowDown size={16} />
              </ActionIcon>
            </Tooltip>
            <Tooltip label={`Remove: its services go back to ${DEFAULT_STAGE}`}>
              <ActionIcon variant="subtle" color="red" aria-label={`Remove stage ${stage.name}`} disabled={busy} onClick={() => remove.mutate({ stageId: id })}>
                <IconTrash size={16} />
              </ActionIcon>
            </Tooltip>
          </Group>
        )}
      </Group>
      {stage.services.length === 0 ? (
        <Text size="sm" c="dimmed" mt="xs">
          No service in this stage.
        </Text>
      ) : (
        <Stack gap={6} mt="xs">
          {stage.services.map((service) => (
            <Group key={service.id} justify="space-between" wrap="nowrap">
              <Text size="sm">{service.name}</Text>
              {canEdit && (
                <NativeSelect
                  size="xs"
                  aria-label={`Stage of ${service.name}`}
                  value={stage.name}
                  disabled={setService.isPending}
                  data={stages.map((candidate) => candidate.name)}
                  onChange={(event) => setService.mutate({ serviceId: service.id, stage: event.currentTarget.value })}
                />
              )}
            </Group>
          ))}
        </Stack>
      )}
    </Card>
  );
}

function AddStageForm({ environmentId, onAdded }: { environmentId: string; onAdded: () => void }) {
  const trpc = useTRPC();
  const invalidate = useInvalidate();
  const add = useMutation(
    trpc.stages.add.mutationOptions({
      onSuccess: async (stage) => {
        notifications.show({ color: "green", message: `Stage ${stage.name} added` });
        await invalidate();
        onAdded();
      },
    }),
  );
  const failure = add.error ? apiError(add.error) : null;
  const { form, input, unmatchedServerError } = useApiForm<Values, "name">({
    initialValues: { name: "" },
    validate: apiSchemaResolver(schema, (values: Values) => values, PATHS),
    paths: PATHS,
    failure,
  });
  return (
    <form onSubmit={form.onSubmit((values) => add.mutate({ environmentId, name: values.name }))} noValidate aria-label="Add a stage">
      <Group align="flex-end" gap="xs">
        <TextInput
          label="New stage"
          description="Added last; lowercase letters, digits and inner hyphens."
          placeholder="frontends"
          {...input("name")}
          maxLength={40}
        />
        <Button type="submit" variant="light" leftSection={<IconPlus size={16} />} loading={add.isPending}>
          Add stage
        </Button>
      </Group>
      {failure && unmatchedServerError && (
        <Alert color="red" role="alert" mt="xs">
          {failure.message}
        </Alert>
      )}
    </form>
  );
}
