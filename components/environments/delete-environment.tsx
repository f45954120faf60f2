"use client";

import { Anchor, Button } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { notifications } from "@mantine/notifications";
import { IconTrash } from "@tabler/icons-react";
import { useMutation } from "@tanstack/react-query";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { useEffect } from "react";
import { terminalStatuses } from "../../engine/protocol/events";
import { ConfirmModal } from "../confirm-delete";
import { findEnvironment, useOverview, type OverviewEnvironment, type OverviewProject } from "../overview/use-overview";
import { useTRPC } from "../trpc";

type Deletion = { environmentId: string; name: string; projectName: string; requestedAt: number; notificationId: string };

/**
 * Mantine dims a titled notification's text to a gray below WCAG AA's contrast on white (axe
 * color-contrast): the text is what says the deletion's outcome, so it keeps the page's color.
 */
const READABLE = { description: { color: "var(--mantine-color-text)" } };

/** Where a DELETE deployment's run ends without removing the environment. */
const failed = (status: string) => (terminalStatuses as ReadonlySet<string>).has(status) && status !== "DELETED";

/**
 * The progress of a deletion, as the message of its notification: the notification outlives the
 * environment's page (the project's page opens at once), and this follows the environment in the
 * organization's overview, kept live by the realtime stream. The DELETE deployment's end removes
 * the environment and its deployments with it (server/deployments/events.ts), so the deployment
 * cannot be followed to its end: the environment leaving the overview is the recorded success.
 */
function DeletionProgress({ deletion }: { deletion: Deletion }) {
  const overview = useOverview();
  const found = findEnvironment(overview.data, deletion.environmentId);
  // Only a read made after the request shows the DELETE deployment as the environment's latest:
  // an older one may still show the failure of a deployment before it.
  const fresh = overview.isSuccess && overview.dataUpdatedAt > deletion.requestedAt;
  const gone = fresh && !found;
  const failure = fresh && found && failed(found.environment.status) ? found.environment.status : null;

  useEffect(() => {
    if (gone)
      notifications.update({
        id: deletion.notificationId,
        loading: false,
        color: "green",
        title: `Environment ${deletion.name} deleted`,
        message: `Its services, variables and deployments are gone from project ${deletion.projectName}.`,
        autoClose: 8000,
        withCloseButton: true,
        styles: READABLE,
      });
    else if (failure)
      notifications.update({
        id: deletion.notificationId,
        loading: false,
        color: "red",
        title: `Environment ${deletion.name} was not deleted`,
        message: (
          <>
            Its DELETE deployment ended {failure}.{" "}
            <Anchor component={Link} href={`/environments/${deletion.environmentId}`} fz="sm">
              Open the environment
            </Anchor>{" "}
            to see why and try again.
          </>
        ),
        autoClose: false,
        withCloseButton: true,
        styles: READABLE,
      });
  }, [gone, failure, deletion]);

  return <>Its services are being stopped and removed; this says when it is done.</>;
}

/**
 * Delete environment, after its name is typed: the request starts a DELETE deployment, the
 * project's page opens, and a notification follows the deletion to its end (DeletionProgress).
 */
export function DeleteEnvironmentButton({ project, environment }: { project: OverviewProject; environment: OverviewEnvironment }) {
  const trpc = useTRPC();
  const router = useRouter();
  const [opened, modal] = useDisclosure();
  const remove = useMutation(
    trpc.environments.delete.mutationOptions({
      onSuccess: (deployment) => {
        const deletion: Deletion = {
          environmentId: environment.id,
          name: environment.name,
          projectName: project.name,
          requestedAt: Date.now(),
          notificationId: `delete-environment-${deployment.id}`,
        };
        notifications.show({
          id: deletion.notificationId,
          loading: true,
          autoClose: false,
          withCloseButton: false,
          title: `Deleting environment ${environment.name}`,
          styles: READABLE,
          message: <DeletionProgress deletion={deletion} />,
        });
        router.push(`/projects/${project.id}`);
      },
    }),
  );
  const services = environment.services;
  return (
    <>
      <Button variant="default" color="red" leftSection={<IconTrash size={16} />} onClick={modal.open}>
        Delete environment
      </Button>
      <ConfirmModal
        opened={opened}
        onClose={modal.close}
        title="Delete environment"
        typeToConfirm={environment.name}
        confirmLabel="Delete environment"
        onConfirm={() => remove.mutateAsync({ environmentId: environment.id })}
      >
        This stops and removes the environment <strong>{environment.name}</strong> of project <strong>{project.name}</strong>
        {services.length > 0 ? (
          <>
            , its {services.length} {services.length === 1 ? "service" : "services"} ({services.map((service) => service.name).join(", ")})
          </>
        ) : null}{" "}
        and its variables. A DELETE deployment does the work; the project&apos;s page opens, and a notification says when it is done.
      </ConfirmModal>
    </>
  );
}
