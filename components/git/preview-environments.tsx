"use client";

import { Alert, Anchor, Badge, Button, Card, Code, Group, NumberInput, Stack, Switch, Table, Text } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import Link from "next/link";
import { useState } from "react";
import type { EnvironmentMode, Outputs } from "../api-types";
import { useCan } from "../auth/can";
import { apiError } from "../errors";
import { Section } from "../page-header";
import { RelativeTime } from "../relative-time";
import { useTRPC } from "../trpc";
import { ApiErrorAlert } from "../api-error-alert";

type Blueprint = { enabled: boolean; lifetimeSeconds: number | null };
type Preview = Outputs["git"]["previews"][number];

/** The environment's blueprint setting; undefined until the environment is loaded. */
function reportedBlueprint(environment: Pick<Outputs["environments"]["get"], "previewBlueprint"> | undefined): Blueprint | undefined {
  if (!environment) return undefined;
  const value = environment.previewBlueprint;
  return value ? { enabled: true, lifetimeSeconds: value.lifetimeSeconds } : { enabled: false, lifetimeSeconds: null };
}

function describe(blueprint: Blueprint): string {
  if (!blueprint.enabled) return "Off: pull requests create no preview from this environment.";
  if (blueprint.lifetimeSeconds === null) return "On: each preview is kept until its pull request closes.";
  const hours = blueprint.lifetimeSeconds / 3600;
  return `On: a preview without a new commit for ${Number.isInteger(hours) ? `${hours} h` : `${Math.round(blueprint.lifetimeSeconds / 60)} min`} is deleted.`;
}

function BlueprintForm({ environmentId, initial, canEdit }: { environmentId: string; initial: Blueprint | undefined; canEdit: boolean }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [current, setCurrent] = useState<Blueprint | undefined>(initial);
  const [enabled, setEnabled] = useState(initial?.enabled ?? false);
  const [hours, setHours] = useState<number | string>(initial?.enabled ? (initial.lifetimeSeconds ? initial.lifetimeSeconds / 3600 : "") : 24);
  const save = useMutation(
    trpc.git.setPreviewBlueprint.mutationOptions({
      onSuccess: async (result) => {
        setCurrent(result);
        notifications.show({
          color: "green",
          message: result.enabled
            ? "Pull requests now create preview environments from this one."
            : "Previews turned off. Existing ones stay until their pull requests close.",
        });
        await queryClient.invalidateQueries({ queryKey: trpc.environments.get.queryKey({ environmentId }) });
      },
    }),
  );
  const failure = save.error ? apiError(save.error) : null;
  const lifetime = typeof hours === "number" && hours > 0 ? Math.round(hours * 3600) : undefined;
  return (
    <form
      onSubmit={(event) => {
        event.preventDefault();
        save.mutate({ environmentId, enabled, lifetimeSeconds: enabled ? lifetime : undefined });
      }}
    >
      <Stack>
        <Text fz="sm" c={current ? undefined : "dimmed"}>
          {current ? describe(current) : "Loading the current setting…"}
        </Text>
        <Switch
          label="Create a preview for each pull request"
          description="A pull request against the branch this environment's services follow is cloned into an environment pr-<number> (its services from that repository follow the pull request's branch). Pull requests from forks are not deployed."
          checked={enabled}
          onChange={(event) => setEnabled(event.currentTarget.checked)}
          disabled={!canEdit}
        />
        <NumberInput
          label="Lifetime (hours)"
          description="A preview without a new commit for this long is deleted. Empty: kept until the pull request closes."
          value={hours}
          onChange={setHours}
          min={1}
          max={90 * 24}
          step={1}
          allowDecimal={false}
          w={260}
          disabled={!canEdit || !enabled}
          error={failure?.fields.lifetimeSeconds}
        />
        {failure && !failure.fields.lifetimeSeconds && (
          <Alert color="red" role="alert">
            {failure.message}
          </Alert>
        )}
        {canEdit && (
          <Group justify="flex-end">
            <Button type="submit" loading={save.isPending}>
              Save
            </Button>
          </Group>
        )}
      </Stack>
    </form>
  );
}

function PreviewsTable({ previews }: { previews: Preview[] }) {
  return (
    <Card withBorder padding={0}>
      <Table.ScrollContainer minWidth={640}>
        <Table verticalSpacing="xs" aria-label="Preview environments">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Environment</Table.Th>
              <Table.Th>Pull request</Table.Th>
              <Table.Th>Branch</Table.Th>
              <Table.Th>Commit</Table.Th>
              <Table.Th>Expires</Table.Th>
              <Table.Th>Created</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {previews.map((preview) => (
              <Table.Tr key={preview.id} opacity={preview.closedAt ? 0.6 : 1}>
                <Table.Td>
                  <Group gap={6}>
                    <Anchor component={Link} href={`/environments/${preview.environmentId}`} fz="sm" fw={500}>
                      {preview.environmentName}
                    </Anchor>
                    {preview.closedAt && (
                      <Badge size="xs" color="gray" variant="light">
                        closed
                      </Badge>
                    )}
                  </Group>
                </Table.Td>
                <Table.Td>
                  <Text fz="sm" title={preview.repository}>
                    #{preview.number}
                  </Text>
                </Table.Td>
                <Table.Td>
                  <Code>{preview.headBranch}</Code>
                </Table.Td>
                <Table.Td>
                  <Code>{preview.headCommit.slice(0, 7)}</Code>
                </Table.Td>
                <Table.Td>
                  <Text fz="sm">
                    <RelativeTime value={preview.expiresAt} fallback="when closed" />
                  </Text>
                </Table.Td>
                <Table.Td>
                  <Text fz="sm">
                    <RelativeTime value={preview.createdAt} />
                  </Text>
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Table.ScrollContainer>
    </Card>
  );
}

/** An environment as the blueprint of pull request previews, and the previews cloned from it. */
export function PreviewEnvironments({ environmentId, mode }: { environmentId: string; mode: EnvironmentMode }) {
  const trpc = useTRPC();
  const canEdit = useCan("DEVELOPER");
  const environment = useQuery(trpc.environments.get.queryOptions({ environmentId }));
  const previews = useQuery(trpc.git.previews.queryOptions({ environmentId }, { refetchInterval: 15_000 }));
  if (mode === "PREVIEW") return null;
  return (
    <Section
      title="Preview environments"
      description="Pull requests get their own copy of this environment, deployed at their head commit and deleted when they close or merge."
    >
      <Stack>
        <Card withBorder padding="lg">
          <ApiErrorAlert error={environment.error} />
          {environment.data && <BlueprintForm environmentId={environmentId} initial={reportedBlueprint(environment.data)} canEdit={canEdit} />}
        </Card>
        <ApiErrorAlert error={previews.error} />
        {previews.data?.length === 0 && (
          <Text c="dimmed" fz="sm">
            No preview of this environment yet.
          </Text>
        )}
        {previews.data && previews.data.length > 0 && <PreviewsTable previews={previews.data} />}
      </Stack>
    </Section>
  );
}
