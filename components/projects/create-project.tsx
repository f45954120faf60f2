"use client";

import { Alert, Button, Group, Modal, Stack, TextInput } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { notifications } from "@mantine/notifications";
import { IconPlus } from "@tabler/icons-react";
import { useMutation } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import { useState } from "react";
import { apiError } from "../errors";
import { useTRPC } from "../trpc";
import { useInvalidate } from "../use-invalidate";
import { dnsLabelError } from "../validation";

export function CreateProjectButton({ variant = "filled" }: { variant?: "filled" | "light" }) {
  const [opened, { open, close }] = useDisclosure();
  return (
    <>
      <Button leftSection={<IconPlus size={16} />} onClick={open} variant={variant}>
        New project
      </Button>
      <CreateProjectModal opened={opened} onClose={close} />
    </>
  );
}

function CreateProjectModal({ opened, onClose }: { opened: boolean; onClose: () => void }) {
  const trpc = useTRPC();
  const router = useRouter();
  const invalidate = useInvalidate();
  const [name, setName] = useState("");
  const [touched, setTouched] = useState(false);
  const create = useMutation(
    trpc.projects.create.mutationOptions({
      onSuccess: async (project) => {
        notifications.show({ color: "green", message: `Project ${project.name} created` });
        await invalidate();
        setName("");
        setTouched(false);
        onClose();
        router.push(`/projects/${project.id}`);
      },
    }),
  );
  const failure = create.error ? apiError(create.error) : null;
  const localError = touched ? dnsLabelError(name) : null;
  return (
    <Modal opened={opened} onClose={onClose} title="New project" centered>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          setTouched(true);
          if (!dnsLabelError(name)) create.mutate({ name });
        }}
      >
        <Stack>
          <TextInput
            label="Project name"
            description="Lowercase letters, digits and inner hyphens; it becomes part of each service's address."
            placeholder="shop"
            value={name}
            onChange={(event) => setName(event.currentTarget.value)}
            onBlur={() => setTouched(true)}
            error={localError ?? failure?.fields.name}
            maxLength={40}
            data-autofocus
            required
          />
          {failure && !failure.fields.name && (
            <Alert color="red" role="alert">
              {failure.message}
            </Alert>
          )}
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" loading={create.isPending}>
              Create project
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
