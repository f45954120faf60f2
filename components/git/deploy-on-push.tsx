"use client";

import { Alert, Button, Card, Group, SimpleGrid, Stack, Switch, Text, Textarea } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import type { Outputs } from "../api-types";
import { useCan } from "../auth/can";
import { apiError } from "../errors";
import { Section } from "../page-header";
import { useTRPC } from "../trpc";

type Triggers = Outputs["services"]["gitTriggers"];

/** Globs typed one per line or comma separated. */
export function parseGlobs(text: string): string[] {
  return text
    .split(/[,\n]/)
    .map((glob) => glob.trim())
    .filter(Boolean);
}

function TriggersForm({ triggers, canEdit }: { triggers: Triggers; canEdit: boolean }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [autoDeploy, setAutoDeploy] = useState(triggers.autoDeploy);
  const [include, setInclude] = useState(triggers.includePaths.join("\n"));
  const [exclude, setExclude] = useState(triggers.excludePaths.join("\n"));
  const [followTags, setFollowTags] = useState(triggers.followTags);
  const save = useMutation(
    trpc.services.setGitTriggers.mutationOptions({
      onSuccess: async (saved) => {
        notifications.show({ color: "green", message: "Deploy on push saved. It applies to the next push." });
        queryClient.setQueryData(trpc.services.gitTriggers.queryKey({ serviceId: saved.serviceId }), saved);
        await queryClient.invalidateQueries({ queryKey: trpc.services.gitTriggers.queryKey({ serviceId: saved.serviceId }) });
      },
    }),
  );
  const failure = save.error ? apiError(save.error) : null;
  const fieldError = (prefix: string) => Object.entries(failure?.fields ?? {}).find(([path]) => path.startsWith(prefix))?.[1];
  const dirty =
    autoDeploy !== triggers.autoDeploy ||
    followTags !== triggers.followTags ||
    parseGlobs(include).join("\n") !== triggers.includePaths.join("\n") ||
    parseGlobs(exclude).join("\n") !== triggers.excludePaths.join("\n");
  return (
    <form
      onSubmit={(event) => {
        event.preventDefault();
        save.mutate({ serviceId: triggers.serviceId, autoDeploy, includePaths: parseGlobs(include), excludePaths: parseGlobs(exclude), followTags });
      }}
    >
      <Stack>
        <Switch
          label="Deploy on push"
          description="A push to the branch this service follows deploys it at the pushed commit. A commit message with [skip deploy] deploys nothing."
          checked={autoDeploy}
          onChange={(event) => setAutoDeploy(event.currentTarget.checked)}
          disabled={!canEdit}
        />
        <SimpleGrid cols={{ base: 1, md: 2 }}>
          <Textarea
            label="Only when these paths change"
            description="Globs over the repository, one per line or comma separated. Empty: any file."
            placeholder={"src/**\npackage.json"}
            value={include}
            onChange={(event) => setInclude(event.currentTarget.value)}
            autosize
            minRows={2}
            readOnly={!canEdit}
            disabled={!autoDeploy && canEdit}
            error={fieldError("includePaths")}
            styles={{ input: { fontFamily: "var(--mantine-font-family-monospace)" } }}
          />
          <Textarea
            label="Never for changes only to"
            description="Globs of files whose changes alone never deploy (docs, tests…)."
            placeholder={"docs/**\n**/*.md"}
            value={exclude}
            onChange={(event) => setExclude(event.currentTarget.value)}
            autosize
            minRows={2}
            readOnly={!canEdit}
            disabled={!autoDeploy && canEdit}
            error={fieldError("excludePaths")}
            styles={{ input: { fontFamily: "var(--mantine-font-family-monospace)" } }}
          />
        </SimpleGrid>
        <Switch
          label="Deploy tags"
          description="Also deploy when a tag is pushed, at the tag's commit."
          checked={followTags}
          onChange={(event) => setFollowTags(event.currentTarget.checked)}
          disabled={!canEdit || !autoDeploy}
        />
        {failure && !fieldError("includePaths") && !fieldError("excludePaths") && (
          <Alert color="red" role="alert">
            {failure.message}
          </Alert>
        )}
        {canEdit && (
          <Group justify="flex-end">
            <Button type="submit" loading={save.isPending} disabled={!dirty}>
              Save
            </Button>
          </Group>
        )}
      </Stack>
    </form>
  );
}

/** When git pushes deploy a service (`services.gitTriggers`); DEVELOPER and above change it. */
export function DeployOnPush({ serviceId }: { serviceId: string }) {
  const trpc = useTRPC();
  const canEdit = useCan("DEVELOPER");
  const triggers = useQuery(trpc.services.gitTriggers.queryOptions({ serviceId }));
  return (
    <Section title="Deploy on push" description="With a git provider connected (Settings → Git), pushes to this service's repository deploy it.">
      <Card withBorder padding="lg">
        {triggers.error && <Alert color="red">{apiError(triggers.error).message}</Alert>}
        {!triggers.data && !triggers.error && (
          <Text c="dimmed" fz="sm">
            Loading…
          </Text>
        )}
        {triggers.data && <TriggersForm key={JSON.stringify(triggers.data)} triggers={triggers.data} canEdit={canEdit} />}
      </Card>
    </Section>
  );
}
