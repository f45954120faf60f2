"use client";

import { Button, Modal } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { notifications } from "@mantine/notifications";
import { IconPlus } from "@tabler/icons-react";
import { useMutation } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import { apiError } from "../errors";
import { useTRPC } from "../trpc";
import { useInvalidate } from "../use-invalidate";
import { emptyServiceForm, ServiceForm, serviceConfigFrom } from "./service-form";

export function CreateServiceButton({ environmentId, variant = "filled" }: { environmentId: string; variant?: "filled" | "light" }) {
  const [opened, { open, close }] = useDisclosure();
  return (
    <>
      <Button leftSection={<IconPlus size={16} />} onClick={open} variant={variant}>
        New service
      </Button>
      {opened && <CreateServiceModal environmentId={environmentId} onClose={close} />}
    </>
  );
}

function CreateServiceModal({ environmentId, onClose }: { environmentId: string; onClose: () => void }) {
  const trpc = useTRPC();
  const router = useRouter();
  const invalidate = useInvalidate();
  const create = useMutation(
    trpc.services.create.mutationOptions({
      onSuccess: async (service) => {
        notifications.show({ color: "green", message: `Service ${service.name} created. Deploy the environment to start it.` });
        await invalidate();
        onClose();
        router.push(`/services/${service.id}`);
      },
    }),
  );
  return (
    <Modal opened onClose={onClose} title="New application service from git" size="lg" centered>
      <ServiceForm
        initial={emptyServiceForm}
        withName
        submitLabel="Create service"
        pending={create.isPending}
        failure={create.error ? apiError(create.error) : null}
        onCancel={onClose}
        onSubmit={(values) => create.mutate({ environmentId, name: values.name.trim(), kind: "APPLICATION", config: serviceConfigFrom(values, undefined) })}
      />
    </Modal>
  );
}
