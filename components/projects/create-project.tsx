"use client";

import { Button, Modal, Stack, TextInput } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { notifications } from "@mantine/notifications";
import { IconPlus } from "@tabler/icons-react";
import { useMutation } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import { z } from "zod";
import { dnsLabel } from "../../engine/protocol/snapshot";
import { apiError } from "../errors";
import { apiSchemaResolver, useApiForm } from "../forms/use-api-form";
import { useTRPC } from "../trpc";
import { useInvalidate } from "../use-invalidate";
import { DialogFormFooter } from "../forms/dialog-form-footer";

/** `projects.create`'s input, by the protocol's name rule. */
const schema = z.object({ name: dnsLabel });
const PATHS = [["name", "name"]] as const;

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
  const create = useMutation(
    trpc.projects.create.mutationOptions({
      onSuccess: async (project) => {
        notifications.show({ color: "green", message: `Project ${project.name} created` });
        await invalidate();
        form.reset();
        onClose();
        router.push(`/projects/${project.id}`);
      },
    }),
  );
  const failure = create.error ? apiError(create.error) : null;
  const { form, input, unmatchedServerError } = useApiForm({
    initialValues: { name: "" },
    validate: apiSchemaResolver(schema, (values: { name: string }) => values, PATHS),
    paths: PATHS,
    failure,
  });
  return (
    <Modal opened={opened} onClose={onClose} title="New project" centered>
      <form onSubmit={form.onSubmit((values) => create.mutate(values))} noValidate>
        <Stack>
          <TextInput
            label="Project name"
            description="Lowercase letters, digits and inner hyphens; it becomes part of each service's address."
            placeholder="shop"
            {...input("name")}
            maxLength={40}
            data-autofocus
            required
          />
          <DialogFormFooter error={unmatchedServerError && failure?.message} onCancel={onClose} submit="Create project" pending={create.isPending} />
        </Stack>
      </form>
    </Modal>
  );
}
