"use client";

import { Alert, Button, Group, Modal, Stack, TextInput } from "@mantine/core";
import { useMutation } from "@tanstack/react-query";
import { useState } from "react";
import { apiError } from "../errors";
import { useTRPC } from "../trpc";

/** The name field and button that create an organization; `onCreated` enters it. */
export function CreateOrganizationForm({ onCreated, onCancel }: { onCreated: (organizationId: string) => Promise<void> | void; onCancel?: () => void }) {
  const trpc = useTRPC();
  const [name, setName] = useState("");
  const create = useMutation(trpc.organizations.create.mutationOptions({ onSuccess: async ({ organization }) => onCreated(organization.id) }));
  const failure = create.error ? apiError(create.error) : null;
  return (
    <form
      onSubmit={(event) => {
        event.preventDefault();
        create.mutate({ name });
      }}
    >
      <Stack>
        <TextInput
          label="Organization name"
          description="You will be its OWNER; invite members once it exists."
          placeholder="Acme platform team"
          value={name}
          onChange={(event) => setName(event.currentTarget.value)}
          error={failure?.fields.name}
          maxLength={100}
          data-autofocus
          required
        />
        {failure && !failure.fields.name && (
          <Alert color="red" role="alert">
            {failure.message}
          </Alert>
        )}
        <Group justify="flex-end">
          {onCancel && (
            <Button variant="default" onClick={onCancel}>
              Cancel
            </Button>
          )}
          <Button type="submit" loading={create.isPending}>
            Create organization
          </Button>
        </Group>
      </Stack>
    </form>
  );
}

export function CreateOrganizationModal({
  opened,
  onClose,
  onCreated,
}: {
  opened: boolean;
  onClose: () => void;
  onCreated: (organizationId: string) => Promise<void>;
}) {
  return (
    <Modal opened={opened} onClose={onClose} title="New organization" centered>
      <CreateOrganizationForm
        onCancel={onClose}
        onCreated={async (organizationId) => {
          onClose();
          await onCreated(organizationId);
        }}
      />
    </Modal>
  );
}
