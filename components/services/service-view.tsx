"use client";

import { Anchor, Button, Card, Code, Group, SimpleGrid, Text } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { notifications } from "@mantine/notifications";
import { IconExternalLink, IconFileText, IconTerminal2, IconTrash } from "@tabler/icons-react";
import { useMutation, useQuery } from "@tanstack/react-query";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { Can, useCan } from "../auth/can";
import { ConfirmModal } from "../confirm-delete";
import { ServiceDeployments } from "../deployments/service-deployments";
import { ModeBadge } from "../environments/mode-badge";
import { ServiceMetrics } from "../metrics/service-metrics";
import { apiError, type ApiErrorDetails } from "../errors";
import { PageState } from "../not-found";
import { findService, useOverview } from "../overview/use-overview";
import { environmentCrumbs, PageHeader, Section } from "../page-header";
import { RelativeTime } from "../relative-time";
import { StatusBadge } from "../status-badge";
import { useTRPC } from "../trpc";
import { useInvalidate } from "../use-invalidate";
import { DeployOnPush } from "../git/deploy-on-push";
import { EffectiveVariables } from "../variables/effective-variables";
import { VariablesPanel } from "../variables/variables-panel";
import type { Service } from "../api-types";
import { DatabaseSettings, databaseConfigOf, engineLabel, useDatabaseVariables } from "./database-settings";
import { Fact } from "./fact";
import { jobConfigFrom, jobFormFrom } from "./job-config";
import { JobForm } from "./job-form";
import { JobFacts } from "./job-status";
import { ServiceForm, serviceConfigFrom, serviceFormFrom } from "./service-form";

export function ServiceView({ serviceId }: { serviceId: string }) {
  const trpc = useTRPC();
  const router = useRouter();
  const invalidate = useInvalidate();
  const canEdit = useCan("DEVELOPER");
  const service = useQuery(trpc.services.get.queryOptions({ serviceId }));
  const overview = useOverview();
  const found = findService(overview.data, serviceId);
  const [deleting, deleteModal] = useDisclosure();
  const { host: databaseHost } = useDatabaseVariables(service.data);
  const update = useMutation(
    trpc.services.update.mutationOptions({
      onSuccess: async () => {
        notifications.show({ color: "green", message: "Settings saved. They apply on the next deployment." });
        await invalidate();
      },
    }),
  );
  const remove = useMutation(
    trpc.services.delete.mutationOptions({
      onSuccess: (deployment) => {
        notifications.show({ message: "Deleting the service: a deployment removes it." });
        router.push(`/deployments/${deployment.id}`);
      },
    }),
  );

  if (!service.data || !found)
    return <PageState loading={service.isLoading || overview.isLoading} error={service.error ?? overview.error} missing what="service" />;
  const { project, environment } = found;
  const current = service.data;
  const runtime = current.runtime;
  const last = found.service.lastDeployment;
  const database = databaseConfigOf(current);

  return (
    <>
      <PageHeader
        title={current.name}
        crumbs={[...environmentCrumbs({ project, environment }), { label: current.name }]}
        badges={
          <>
            <ModeBadge mode={environment.mode} />
            <StatusBadge status={found.service.status} />
          </>
        }
        actions={
          <>
            <Button component={Link} href={`/services/${current.id}/logs`} variant="default" leftSection={<IconFileText size={16} />}>
              Runtime logs
            </Button>
            {current.kind !== "JOB" && (
              <Can role="DEVELOPER">
                <Button component={Link} href={`/services/${current.id}/shell`} variant="default" leftSection={<IconTerminal2 size={16} />}>
                  Shell
                </Button>
              </Can>
            )}
            <Can role="DEVELOPER">
              <Button variant="default" color="red" leftSection={<IconTrash size={16} />} onClick={deleteModal.open}>
                Delete service
              </Button>
            </Can>
          </>
        }
      />
      <Card withBorder padding="lg" mb="xl">
        <SimpleGrid cols={{ base: 2, md: 5 }} spacing="lg">
          <Fact label="Status">
            <StatusBadge status={found.service.status} />
          </Fact>
          {database ? (
            <>
              <Fact label="Engine">
                <Text fz="sm">{engineLabel(database.engine)}</Text>
              </Fact>
              <Fact label="Address">
                <Code>{`${databaseHost ?? "…"}:${database.connection.port}`}</Code>
              </Fact>
            </>
          ) : (
            <Fact label="Running commit">
              {runtime?.commit ? (
                <Code>{runtime.commit.slice(0, 12)}</Code>
              ) : (
                <Text fz="sm" c="dimmed">
                  —
                </Text>
              )}
            </Fact>
          )}
          {current.kind !== "JOB" && (
            <Fact label="Restarts">
              <Text fz="sm">{runtime ? runtime.restarts : "—"}</Text>
              {runtime?.lastRestart && (
                <Text fz="xs" c={runtime.lastRestart.oomKilled ? "red" : "dimmed"}>
                  Last: <RelativeTime value={runtime.lastRestart.at} />, {runtime.lastRestart.reason}
                </Text>
              )}
            </Fact>
          )}
          <Fact label="Last deployment">
            {last ? (
              <Group gap={6}>
                <StatusBadge status={last.status} />
                <Anchor component={Link} href={`/deployments/${last.id}`} fz="sm">
                  <RelativeTime value={last.createdAt} />
                </Anchor>
              </Group>
            ) : (
              <Text fz="sm" c="dimmed">
                Never deployed
              </Text>
            )}
          </Fact>
          {(current.kind === "APPLICATION" || current.kind === "CONTAINER") && (
            <Fact label="URL">
              {found.service.url ? (
                <Anchor href={found.service.url} target="_blank" rel="noreferrer" fz="sm" className="break-anywhere">
                  {found.service.url.replace(/^https?:\/\//, "")} <IconExternalLink size={12} aria-label="opens in a new tab" />
                </Anchor>
              ) : (
                <Text fz="sm" c="dimmed">
                  —
                </Text>
              )}
            </Fact>
          )}
          <JobFacts service={current} />
        </SimpleGrid>
      </Card>
      {current.kind !== "JOB" && <ServiceMetrics serviceId={current.id} />}
      <ServiceDeployments serviceId={current.id} environmentId={current.environmentId} serviceName={current.name} />
      <Settings
        service={current}
        canEdit={canEdit}
        pending={update.isPending}
        failure={update.error ? apiError(update.error) : null}
        onSave={(config) => update.mutate({ serviceId: current.id, config })}
      />
      {"git" in current.config && <DeployOnPush serviceId={current.id} />}
      <EffectiveVariables serviceId={current.id} />
      <VariablesPanel
        scope="SERVICE"
        targetId={current.id}
        description="Only this service receives them; they override environment and project variables with the same key."
      />
      <ConfirmModal
        opened={deleting}
        onClose={deleteModal.close}
        title="Delete service"
        typeToConfirm={current.name}
        confirmLabel="Delete service"
        onConfirm={() => remove.mutateAsync({ serviceId: current.id })}
      >
        This stops the service <strong>{current.name}</strong> in environment <strong>{environment.name}</strong> of project <strong>{project.name}</strong>,
        removes its releases and its variables. A DELETE deployment does the work; you will follow it on its page.
      </ConfirmModal>
    </>
  );
}

/** A service's settings, as its kind has them: editable forms for applications and jobs, facts for containers and databases. */
function Settings({
  service,
  canEdit,
  pending,
  failure,
  onSave,
}: {
  service: Service;
  canEdit: boolean;
  pending: boolean;
  failure: ApiErrorDetails | null;
  onSave: (config: Record<string, unknown>) => void;
}) {
  const application = serviceFormFrom(service);
  const job = jobFormFrom(service);
  if (service.kind === "DATABASE") return <DatabaseSettings service={service} />;
  if (job) {
    return (
      <Section
        title="Settings"
        description={
          canEdit ? "Changes apply on the next deployment: it rebuilds the job and reschedules it." : "Where the job's code comes from, what it runs and when."
        }
      >
        <Card withBorder padding="lg">
          <JobForm
            key={JSON.stringify(service.config)}
            initial={job}
            withName={false}
            readOnly={!canEdit}
            submitLabel="Save settings"
            pending={pending}
            failure={failure}
            onSubmit={(values) => onSave(jobConfigFrom(values, null))}
          />
        </Card>
      </Section>
    );
  }
  if (application) {
    return (
      <Section
        title="Settings"
        description={
          canEdit
            ? "Changes apply on the next deployment. Empty build command, start command or port means detected."
            : "Where the code comes from and how it is built and run."
        }
      >
        <Card withBorder padding="lg">
          <ServiceForm
            key={JSON.stringify(service.config)}
            initial={application}
            withName={false}
            readOnly={!canEdit}
            submitLabel="Save settings"
            pending={pending}
            failure={failure}
            onSubmit={(values) => onSave(serviceConfigFrom(values, null))}
          />
        </Card>
      </Section>
    );
  }
  return (
    <Section title="Settings" description="A container service runs its image as it is; change it through the API or the CLI.">
      <Card withBorder padding="lg">
        <ContainerSettings config={service.config} />
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
      {config.image.credentials ? <Fact label="Registry user">{config.image.credentials.username}</Fact> : null}
    </SimpleGrid>
  );
}
