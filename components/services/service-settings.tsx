"use client";

import { Button, Card, Code, Divider, Group, SimpleGrid, Text, Title } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { notifications } from "@mantine/notifications";
import { IconTrash } from "@tabler/icons-react";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import { useState, type ReactNode } from "react";
import type { Service } from "../api-types";
import { Can, useCan } from "../auth/can";
import { ConfirmModal } from "../confirm-delete";
import { apiError } from "../errors";
import { DeployOnPushFields, triggersChanged, triggersDraft, triggersInput, type GitTriggers, type TriggersDraft } from "../git/deploy-on-push";
import { findService, useOverview } from "../overview/use-overview";
import { Section } from "../page-header";
import { useTRPC } from "../trpc";
import { useInvalidate } from "../use-invalidate";
import { BuildPlanPanel } from "./build-plan";
import { Fact } from "./fact";
import { jobConfigFrom, jobFormFrom } from "./job-config";
import { JobForm } from "./job-form";
import { ServiceForm, serviceConfigFrom, serviceFormFrom } from "./service-form";
import { ApiErrorAlert } from "../api-error-alert";

/**
 * The Settings tab: what the service runs and when it deploys, in one form with one Save
 * (issue 15, item 6), then deleting it, an action of its own. A container and a database are
 * shown as they are: the dashboard does not change them.
 */
export function ServiceSettings({ serviceId }: { serviceId: string }) {
  const trpc = useTRPC();
  const service = useQuery(trpc.services.get.queryOptions({ serviceId }));
  const withGit = !!service.data && "git" in service.data.config;
  const triggers = useQuery({ ...trpc.services.gitTriggers.queryOptions({ serviceId }), enabled: withGit });
  if (!service.data) return null;
  const current = service.data;

  return (
    <>
      {withGit ? (
        triggers.isPending ? (
          <Text c="dimmed" fz="sm">
            Loading…
          </Text>
        ) : (
          <>
            <ApiErrorAlert error={triggers.error} mb="md" title="Could not load the deploy-on-push settings" />
            <BuildSettings key={JSON.stringify([current.config, triggers.data])} service={current} triggers={triggers.data ?? null} />
            {/* Re-read with every query after a save (useInvalidate): it follows the commands, root and output directory. */}
            <BuildPlanPanel serviceId={current.id} />
          </>
        )
      ) : current.kind === "DATABASE" ? (
        <Section title="Settings">
          <Text fz="sm" c="dimmed">
            A database keeps the engine and the connection it was created with (see the Overview); create another one to switch engines.
          </Text>
        </Section>
      ) : (
        <Section title="Settings" description="A container service runs its image as it is; change it through the API or the CLI.">
          <Card withBorder padding="lg">
            <ContainerSettings config={current.config} />
          </Card>
        </Section>
      )}
      <Can role="DEVELOPER">
        <DeleteService service={current} />
      </Can>
    </>
  );
}

/**
 * An application's or a job's settings and its deploy-on-push settings under one Save. Two API
 * calls behind it, each only when its part changed: the configuration first (checked against the
 * repository), then the triggers. A refusal shows beside its fields and keeps what was typed.
 */
function BuildSettings({ service, triggers }: { service: Service; triggers: GitTriggers | null }) {
  const trpc = useTRPC();
  const invalidate = useInvalidate();
  const canEdit = useCan("DEVELOPER");
  const [draft, setDraft] = useState<TriggersDraft | null>(triggers && triggersDraft(triggers));
  const update = useMutation(trpc.services.update.mutationOptions());
  const saveTriggers = useMutation(trpc.services.setGitTriggers.mutationOptions());
  const pending = update.isPending || saveTriggers.isPending;

  const saved = async () => {
    notifications.show({ color: "green", message: "Settings saved. Build and run settings apply on the next deployment, deploy on push to the next push." });
    await invalidate();
  };
  const save = (config: Record<string, unknown>, before: Record<string, unknown>) => {
    update.reset();
    saveTriggers.reset();
    const pushChanged = !!triggers && !!draft && triggersChanged(draft, triggers);
    const thenTriggers = () => (pushChanged ? saveTriggers.mutate(triggersInput(service.id, draft!), { onSuccess: () => void saved() }) : void saved());
    if (JSON.stringify(config) !== JSON.stringify(before)) update.mutate({ serviceId: service.id, config }, { onSuccess: thenTriggers });
    else if (pushChanged) thenTriggers();
    else notifications.show({ message: "Nothing changed." });
  };
  const fields: ReactNode = draft && (
    <>
      <Divider my="xs" />
      <Title order={3} fz="md" fw={600}>
        Deploy on push
      </Title>
      <DeployOnPushFields draft={draft} onChange={setDraft} canEdit={canEdit} failure={saveTriggers.error ? apiError(saveTriggers.error) : null} />
    </>
  );
  const failure = update.error ? apiError(update.error) : null;
  const job = jobFormFrom(service);
  const application = serviceFormFrom(service);

  return (
    <Section
      title="Settings"
      description={
        !canEdit
          ? "Where the code comes from, how it is built and run, and when a push deploys it."
          : job
            ? "Changes to the job apply on the next deployment: it rebuilds the job and reschedules it."
            : "Changes apply on the next deployment. Empty commands, versions, output directory or port mean detected."
      }
    >
      <Card withBorder padding="lg">
        {job ? (
          <JobForm
            initial={job}
            withName={false}
            readOnly={!canEdit}
            submitLabel="Save settings"
            pending={pending}
            failure={failure}
            onSubmit={(values) => save(jobConfigFrom(values, null), jobConfigFrom(job, null))}
          >
            {fields}
          </JobForm>
        ) : application ? (
          <ServiceForm
            initial={application}
            withName={false}
            readOnly={!canEdit}
            submitLabel="Save settings"
            pending={pending}
            failure={failure}
            onSubmit={(values) => save(serviceConfigFrom(values, null), serviceConfigFrom(application, null))}
          >
            {fields}
          </ServiceForm>
        ) : null}
      </Card>
    </Section>
  );
}

/** What a CONTAINER service runs, read-only (the registry password never reaches the browser). */
function ContainerSettings({ config }: { config: Service["config"] }) {
  if (!("image" in config)) return null;
  return (
    <SimpleGrid cols={{ base: 1, sm: 2 }}>
      <Fact label="Image">
        <Code>{`${config.image.name}:${config.image.tag}`}</Code>
      </Fact>
      <Fact label="Port">{config.port ?? "from the image"}</Fact>
      <Fact label="Health check">{config.healthCheckPath ?? "port accepts connections"}</Fact>
      <Fact label="Restart policy">{config.restartPolicy}</Fact>
      <Fact label="Sleep after">{sleepText(config.sleepAfterMinutes)}</Fact>
      {config.image.credentials ? <Fact label="Registry user">{config.image.credentials.username}</Fact> : null}
    </SimpleGrid>
  );
}

/** A container's own setting of sleep when idle, in words; none: its environment's default (issue 16). */
function sleepText(minutes: number | undefined): string {
  if (minutes === undefined) return "the environment's default";
  return minutes === 0 ? "never" : `${minutes} min without a request`;
}

/** Deleting the service: its own action, confirmed by typing the name; a DELETE deployment does the work. */
function DeleteService({ service }: { service: Service }) {
  const trpc = useTRPC();
  const router = useRouter();
  const overview = useOverview();
  const place = findService(overview.data, service.id);
  const [deleting, deleteModal] = useDisclosure();
  const remove = useMutation(
    trpc.services.delete.mutationOptions({
      onSuccess: (deployment) => {
        notifications.show({ message: "Deleting the service: a deployment removes it." });
        router.push(`/deployments/${deployment.id}`);
      },
    }),
  );
  return (
    <Section title="Delete service">
      <Card withBorder padding="lg" style={{ borderColor: "var(--mantine-color-red-4)" }}>
        <Group justify="space-between" wrap="wrap" gap="sm">
          <Text fz="sm">Stops the service and removes its releases and its variables. It cannot be undone.</Text>
          <Button variant="default" color="red" leftSection={<IconTrash size={16} />} onClick={deleteModal.open}>
            Delete service
          </Button>
        </Group>
      </Card>
      <ConfirmModal
        opened={deleting}
        onClose={deleteModal.close}
        title="Delete service"
        typeToConfirm={service.name}
        confirmLabel="Delete service"
        onConfirm={() => remove.mutateAsync({ serviceId: service.id })}
      >
        This stops the service <strong>{service.name}</strong>
        {place && (
          <>
            {" "}
            in environment <strong>{place.environment.name}</strong> of project <strong>{place.project.name}</strong>
          </>
        )}
        , removes its releases and its variables. A DELETE deployment does the work; you will follow it on its page.
      </ConfirmModal>
    </Section>
  );
}
