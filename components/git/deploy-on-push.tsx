"use client";

import { Alert, SimpleGrid, Stack, Switch, Textarea } from "@mantine/core";
import type { Inputs, Outputs } from "../api-types";
import type { ApiErrorDetails } from "../errors";

export type GitTriggers = Outputs["services"]["gitTriggers"];

/** The deploy-on-push settings as the form holds them: globs as typed. */
export type TriggersDraft = { autoDeploy: boolean; include: string; exclude: string; followTags: boolean };

/** Globs typed one per line or comma separated. */
export function parseGlobs(text: string): string[] {
  return text
    .split(/[,\n]/)
    .map((glob) => glob.trim())
    .filter(Boolean);
}

export function triggersDraft(triggers: GitTriggers): TriggersDraft {
  return {
    autoDeploy: triggers.autoDeploy,
    include: triggers.includePaths.join("\n"),
    exclude: triggers.excludePaths.join("\n"),
    followTags: triggers.followTags,
  };
}

export function triggersInput(serviceId: string, draft: TriggersDraft): Inputs["services"]["setGitTriggers"] {
  return {
    serviceId,
    autoDeploy: draft.autoDeploy,
    includePaths: parseGlobs(draft.include),
    excludePaths: parseGlobs(draft.exclude),
    followTags: draft.followTags,
  };
}

/** Whether the draft says something else than the saved settings (reformatted globs are the same). */
export function triggersChanged(draft: TriggersDraft, saved: GitTriggers): boolean {
  return (
    draft.autoDeploy !== saved.autoDeploy ||
    draft.followTags !== saved.followTags ||
    parseGlobs(draft.include).join("\n") !== saved.includePaths.join("\n") ||
    parseGlobs(draft.exclude).join("\n") !== saved.excludePaths.join("\n")
  );
}

const MONO = { input: { fontFamily: "var(--mantine-font-family-monospace)" } };

/**
 * When git pushes deploy a service (`services.setGitTriggers`): fields of the service's settings
 * form, saved with it. With a git provider connected (Settings → Git), pushes to the service's
 * repository deploy it.
 */
export function DeployOnPushFields({
  draft,
  onChange,
  canEdit,
  failure,
}: {
  draft: TriggersDraft;
  onChange: (draft: TriggersDraft) => void;
  canEdit: boolean;
  failure: ApiErrorDetails | null;
}) {
  const set = <K extends keyof TriggersDraft>(key: K, value: TriggersDraft[K]) => onChange({ ...draft, [key]: value });
  const fieldError = (prefix: string) => Object.entries(failure?.fields ?? {}).find(([path]) => path.startsWith(prefix))?.[1];
  return (
    <Stack>
      <Switch
        label="Deploy on push"
        description="With a git provider connected (Settings → Git), a push to the branch this service follows deploys it at the pushed commit. A commit message with [skip deploy] deploys nothing."
        checked={draft.autoDeploy}
        onChange={(event) => set("autoDeploy", event.currentTarget.checked)}
        disabled={!canEdit}
      />
      <SimpleGrid cols={{ base: 1, md: 2 }}>
        <Textarea
          label="Only when these paths change"
          description="Globs over the repository, one per line or comma separated. Empty: any file."
          placeholder={"src/**\npackage.json"}
          value={draft.include}
          onChange={(event) => set("include", event.currentTarget.value)}
          autosize
          minRows={2}
          readOnly={!canEdit}
          disabled={!draft.autoDeploy && canEdit}
          error={fieldError("includePaths")}
          styles={MONO}
        />
        <Textarea
          label="Never for changes only to"
          description="Globs of files whose changes alone never deploy (docs, tests…)."
          placeholder={"docs/**\n**/*.md"}
          value={draft.exclude}
          onChange={(event) => set("exclude", event.currentTarget.value)}
          autosize
          minRows={2}
          readOnly={!canEdit}
          disabled={!draft.autoDeploy && canEdit}
          error={fieldError("excludePaths")}
          styles={MONO}
        />
      </SimpleGrid>
      <Switch
        label="Deploy tags"
        description="Also deploy when a tag is pushed, at the tag's commit."
        checked={draft.followTags}
        onChange={(event) => set("followTags", event.currentTarget.checked)}
        disabled={!canEdit || !draft.autoDeploy}
      />
      {failure && !fieldError("includePaths") && !fieldError("excludePaths") && (
        <Alert color="red" role="alert" title="Deploy on push was not saved">
          {failure.message}
        </Alert>
      )}
    </Stack>
  );
}
