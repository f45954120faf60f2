"use client";

import { ActionIcon, Badge, Button, Checkbox, FileButton, Group, Modal, PasswordInput, Stack, Table, Text, Textarea, TextInput, Tooltip } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { notifications } from "@mantine/notifications";
import { IconEdit, IconFileImport, IconLock, IconPlus, IconRobot, IconTrash, IconUpload } from "@tabler/icons-react";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { z } from "zod";
import { variableKey, variableValue } from "../../server/input-schemas";
import type { Outputs, VariableScope } from "../api-types";
import { useCan } from "../auth/can";
import { ConfirmModal } from "../confirm-delete";
import { CopyableKey } from "../copy-button";
import { apiError } from "../errors";
import { apiSchemaResolver, useApiForm } from "../forms/use-api-form";
import { Section } from "../page-header";
import { useTRPC } from "../trpc";
import { useInvalidate } from "../use-invalidate";
import { DialogFormFooter } from "../forms/dialog-form-footer";
import { ApiErrorAlert } from "../api-error-alert";
import { PendingRestart } from "./pending-restart";

type Variable = Outputs["variables"]["list"][number];

export const MASK = "••••••";
const MONO = { input: { fontFamily: "var(--mantine-font-family-monospace)" } };

const SCOPE_WORDS: Record<VariableScope, string> = { PROJECT: "project", ENVIRONMENT: "environment", SERVICE: "service" };

/**
 * The variables of one scope: plain values shown, secrets masked and write-only (they can be
 * replaced, never revealed), add, edit, delete and bulk import of a `.env` file. An
 * environment's and a service's lists also have what lifecycle jobs output, read-only, with the job's name.
 */
export function VariablesPanel({ scope, targetId, description }: { scope: VariableScope; targetId: string; description?: string }) {
  const trpc = useTRPC();
  const canEdit = useCan("DEVELOPER");
  const variables = useQuery(trpc.variables.list.queryOptions({ scope, targetId }));
  const [editing, setEditing] = useState<Variable | "new" | null>(null);
  const [deleting, setDeleting] = useState<Variable | null>(null);
  const [importing, importModal] = useDisclosure();
  const invalidate = useInvalidate();
  /** The latest change made here, until it is applied with a restart or dismissed: what runs has the old values. */
  const [changed, setChanged] = useState<string | null>(null);
  const unset = useMutation(
    trpc.variables.unset.mutationOptions({
      onSuccess: async (_result, removed) => {
        setChanged(`${removed.key} deleted`);
        await invalidate();
      },
    }),
  );
  const word = SCOPE_WORDS[scope];

  return (
    <Section
      title={`${word.charAt(0).toUpperCase()}${word.slice(1)} variables`}
      description={description}
      actions={
        canEdit ? (
          <>
            <Button variant="default" size="xs" leftSection={<IconFileImport size={14} />} onClick={importModal.open}>
              Import .env
            </Button>
            <Button size="xs" leftSection={<IconPlus size={14} />} onClick={() => setEditing("new")}>
              Add variable
            </Button>
          </>
        ) : null
      }
    >
      <ApiErrorAlert error={variables.error} />
      {variables.data && variables.data.length === 0 && (
        <Text c="dimmed" fz="sm" py="sm">
          No {word} variables. {canEdit ? "Add one, or import a .env file." : ""}
        </Text>
      )}
      {variables.data && variables.data.length > 0 && (
        <Table.ScrollContainer minWidth={520} className="stack-on-phone">
          <Table verticalSpacing={6} aria-label={`${word} variables`}>
            <Table.Thead>
              <Table.Tr>
                <Table.Th w="30%">Key</Table.Th>
                <Table.Th>Value</Table.Th>
                {canEdit && <Table.Th w={96}>Actions</Table.Th>}
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {variables.data.map((variable) => (
                <Table.Tr key={variable.job ? `job:${variable.key}` : variable.key}>
                  <Table.Td data-label="Key">
                    <CopyableKey value={variable.key} />
                  </Table.Td>
                  <Table.Td data-label="Value">
                    {variable.job ? <JobOutputValue job={variable.job.name} /> : <VariableValue value={variable.value} secret={variable.secret} />}
                  </Table.Td>
                  {canEdit && variable.job && <Table.Td />}
                  {canEdit && !variable.job && (
                    <Table.Td>
                      <Group gap={4} wrap="nowrap">
                        <Tooltip label="Edit" withArrow>
                          <ActionIcon variant="subtle" color="gray" aria-label={`Edit ${variable.key}`} onClick={() => setEditing(variable)}>
                            <IconEdit size={16} />
                          </ActionIcon>
                        </Tooltip>
                        <Tooltip label="Delete" withArrow>
                          <ActionIcon variant="subtle" color="red" aria-label={`Delete ${variable.key}`} onClick={() => setDeleting(variable)}>
                            <IconTrash size={16} />
                          </ActionIcon>
                        </Tooltip>
                      </Group>
                    </Table.Td>
                  )}
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
      {changed && <PendingRestart scope={scope} targetId={targetId} change={changed} onDone={() => setChanged(null)} />}
      {editing && (
        <VariableModal
          scope={scope}
          targetId={targetId}
          existing={editing === "new" ? null : editing}
          setKeys={(variables.data ?? []).filter((variable) => !variable.job).map((variable) => variable.key)}
          onClose={() => setEditing(null)}
          onSaved={(key) => setChanged(`${key} saved`)}
        />
      )}
      {importing && (
        <ImportModal
          scope={scope}
          targetId={targetId}
          onClose={importModal.close}
          onImported={(count) => setChanged(`Imported ${count} ${count === 1 ? "variable" : "variables"}`)}
        />
      )}
      <ConfirmModal
        opened={deleting !== null}
        onClose={() => setDeleting(null)}
        title="Delete variable"
        confirmLabel="Delete variable"
        onConfirm={() => unset.mutateAsync({ scope, targetId, key: deleting!.key })}
      >
        Delete <strong>{deleting?.key}</strong> from this {word}? Running services keep it until their next restart or deploy.
      </ConfirmModal>
    </Section>
  );
}

/** A lifecycle job's output: set by its runs, not here; the engine alone has the value. */
export function JobOutputValue({ job }: { job: string }) {
  return (
    <Group gap={6} wrap="nowrap">
      <Tooltip label="Written by the job's run to $SLIPWAY_OUTPUT_FILE; its value stays with the engine. Read-only here." withArrow multiline w={260}>
        <Badge size="sm" variant="light" color="cyan" leftSection={<IconRobot size={12} aria-hidden />} tabIndex={0}>
          set by job {job}
        </Badge>
      </Tooltip>
    </Group>
  );
}

export function VariableValue({ value, secret }: { value: string | null; secret: boolean }) {
  if (secret || value === null) {
    return (
      <Group gap={6} wrap="nowrap">
        <Text ff="monospace" fz="sm" c="dimmed" aria-label="secret value, hidden">
          {MASK}
        </Text>
        <Badge size="xs" variant="light" color="grape" leftSection={<IconLock size={10} />}>
          secret
        </Badge>
      </Group>
    );
  }
  return (
    <Text ff="monospace" fz="sm" className="break-anywhere" style={{ whiteSpace: "pre-wrap" }}>
      {value === "" ? (
        <Text span c="dimmed" fz="sm">
          (empty)
        </Text>
      ) : (
        value
      )}
    </Text>
  );
}

type VariableValues = { key: string; value: string; secret: boolean };
const VARIABLE_PATHS = [
  ["key", "key"],
  ["value", "value"],
  ["secret", "secret"],
] as const;
/** `variables.set`'s rules for what the form edits. */
const variableSchema = z.object({ key: variableKey, value: variableValue, secret: z.boolean() });

function VariableModal({
  scope,
  targetId,
  existing,
  setKeys,
  onClose,
  onSaved,
}: {
  scope: VariableScope;
  targetId: string;
  existing: Variable | null;
  /** The keys already set at this scope: adding one of them asks before overwriting it. */
  setKeys: string[];
  onClose: () => void;
  onSaved: (key: string) => void;
}) {
  const trpc = useTRPC();
  const invalidate = useInvalidate();
  const word = SCOPE_WORDS[scope];
  /** The values waiting for the answer to "overwrite?". */
  const [overwriting, setOverwriting] = useState<VariableValues | null>(null);
  const set = useMutation(
    trpc.variables.set.mutationOptions({
      onSuccess: async (saved) => {
        onSaved(saved.key);
        await invalidate();
        onClose();
      },
      // Set by someone else since the list was read: the same question, asked late.
      onError: (error, input) => {
        if (apiError(error).code === "CONFLICT" && input.overwrite === false)
          setOverwriting({ key: input.key, value: input.value, secret: input.secret ?? false });
      },
    }),
  );
  const failure = set.error && !overwriting ? apiError(set.error) : null;
  const resolve = apiSchemaResolver(variableSchema, (values: VariableValues) => values, VARIABLE_PATHS);
  const { form, input, unmatchedServerError } = useApiForm<VariableValues, "key" | "value" | "secret">({
    initialValues: { key: existing?.key ?? "", value: existing?.secret ? "" : (existing?.value ?? ""), secret: existing?.secret ?? false },
    // Replacing a secret needs a new value: the old one cannot be shown, so an empty field would blank it.
    validate: (values) => ({ ...resolve(values), ...(existing?.secret && values.value === "" ? { value: "Enter the new value" } : {}) }),
    paths: VARIABLE_PATHS,
    failure,
  });
  const values = form.getValues();
  const save = (submitted: VariableValues, overwrite: boolean) => set.mutate({ scope, targetId, ...submitted, overwrite });
  const valueProps = {
    label: "Value",
    description: existing?.secret ? "Secret values are never shown. Enter a new value to replace it." : undefined,
    placeholder: existing?.secret ? MASK : "",
    ...input("value"),
    styles: MONO,
    autoComplete: "off",
    "data-autofocus": existing ? true : undefined,
  };
  return (
    <Modal opened onClose={onClose} title={existing ? `Edit ${existing.key}` : "Add variable"} centered>
      <form
        onSubmit={form.onSubmit((submitted) => {
          if (existing) return save(submitted, true);
          if (setKeys.includes(submitted.key)) return setOverwriting(submitted);
          save(submitted, false);
        })}
        noValidate
      >
        <Stack>
          <TextInput
            label="Key"
            placeholder="DATABASE_URL"
            {...input("key")}
            readOnly={existing !== null}
            styles={MONO}
            required
            data-autofocus={existing ? undefined : true}
          />
          {values.secret ? (
            // Masked while typed, as a password is, with the input's own button to reveal what was typed.
            <PasswordInput {...valueProps} visibilityToggleFocusable visibilityToggleButtonProps={{ "aria-label": "Show or hide the value" }} />
          ) : (
            <Textarea {...valueProps} autosize minRows={1} maxRows={8} />
          )}
          <Checkbox
            label="Secret"
            description="Encrypted and write-only: nobody can read it back, it is masked in logs."
            {...input("secret", { type: "checkbox" })}
          />
          <DialogFormFooter error={unmatchedServerError && failure?.message} onCancel={onClose} submit="Save variable" pending={set.isPending} />
        </Stack>
      </form>
      <ConfirmModal
        opened={overwriting !== null}
        onClose={() => setOverwriting(null)}
        title="Overwrite variable"
        confirmLabel="Overwrite"
        onConfirm={async () => {
          await set.mutateAsync({ scope, targetId, ...overwriting!, overwrite: true });
        }}
      >
        <strong>{overwriting?.key}</strong> is already set on this {word}. Overwrite its value? Running services keep the old one until their next restart or
        deploy.
      </ConfirmModal>
    </Modal>
  );
}

function ImportModal({
  scope,
  targetId,
  onClose,
  onImported,
}: {
  scope: VariableScope;
  targetId: string;
  onClose: () => void;
  onImported: (count: number) => void;
}) {
  const trpc = useTRPC();
  const invalidate = useInvalidate();
  const [content, setContent] = useState("");
  const [secret, setSecret] = useState(false);
  const [fileName, setFileName] = useState<string | null>(null);
  const importFile = useMutation(
    trpc.variables.import.mutationOptions({
      onSuccess: async (result) => {
        notifications.show({
          color: "green",
          title: `Imported ${result.imported} ${result.imported === 1 ? "variable" : "variables"}`,
          message: result.keys.join(", "),
        });
        onImported(result.imported);
        await invalidate();
        onClose();
      },
    }),
  );
  const load = async (file: File | null) => {
    if (!file) return;
    setFileName(file.name);
    setContent(await file.text());
  };
  return (
    <Modal opened onClose={onClose} title="Import a .env file" size="lg" centered>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          importFile.mutate({ scope, targetId, content, secret });
        }}
      >
        <Stack>
          <Text fz="sm" c="dimmed">
            One{" "}
            <Text span ff="monospace">
              KEY=value
            </Text>{" "}
            per line; comments and{" "}
            <Text span ff="monospace">
              export
            </Text>{" "}
            are fine. Existing keys are overwritten. All or nothing: one invalid name and nothing is imported.
          </Text>
          <Group>
            <FileButton onChange={(file) => void load(file)} accept=".env,text/plain,*">
              {(props) => (
                <Button {...props} variant="default" leftSection={<IconUpload size={14} />}>
                  Choose a file
                </Button>
              )}
            </FileButton>
            {fileName && (
              <Text fz="sm" c="dimmed">
                {fileName}
              </Text>
            )}
          </Group>
          <Textarea
            label=".env content"
            placeholder={"DATABASE_URL=postgres://…\nLOG_LEVEL=info"}
            value={content}
            onChange={(event) => setContent(event.currentTarget.value)}
            autosize
            minRows={6}
            maxRows={16}
            styles={MONO}
            required
            autoComplete="off"
            data-autofocus
          />
          <Checkbox label="Import every value as a secret" checked={secret} onChange={(event) => setSecret(event.currentTarget.checked)} />
          <DialogFormFooter
            error={importFile.error && apiError(importFile.error).message}
            errorTitle="Import refused"
            onCancel={onClose}
            submit="Import variables"
            pending={importFile.isPending}
            disabled={content.trim() === ""}
          />
        </Stack>
      </form>
    </Modal>
  );
}
