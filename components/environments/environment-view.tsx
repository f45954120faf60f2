"use client";

import { Anchor, Button, Card, Group, Text } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { notifications } from "@mantine/notifications";
import { IconCopy, IconServer, IconTrash } from "@tabler/icons-react";
import { useMutation, useQuery } from "@tanstack/react-query";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { Can } from "../auth/can";
import { ConfirmModal } from "../confirm-delete";
import { EnvironmentDeployments } from "../deployments/environment-deployments";
import { PreviewEnvironments } from "../git/preview-environments";
import { PageState } from "../not-found";
import { ServicesTable } from "../overview/services-table";
import { findEnvironment, useOverview } from "../overview/use-overview";
import { PageHeader, Section } from "../page-header";
import { RelativeTime } from "../relative-time";
import { CreateServiceButton } from "../services/create-service";
import { StatusBadge } from "../status-badge";
import { useTRPC } from "../trpc";
import { VariablesPanel } from "../variables/variables-panel";
import { CloneEnvironmentButton } from "./clone-environment";
import { ModeBadge } from "./mode-badge";
import { PromoteEnvironmentButton } from "./promote-environment";
import { SleepPanel } from "./sleep-panel";
import { StagesPanel } from "./stages-panel";

export function EnvironmentView({ environmentId }: { environmentId: string }) {
  const trpc = useTRPC();
  const router = useRouter();
  const overview = useOverview();
  const found = findEnvironment(overview.data, environmentId);
  // The overview has no lineage or expiry: they come with the environment itself.
  const details = useQuery(trpc.environments.get.queryOptions({ environmentId }));
  const clonedFromId = details.data?.clonedFromId ?? null;
  const source = clonedFromId ? findEnvironment(overview.data, clonedFromId) : null;
  const [deleting, deleteModal] = useDisclosure();
  const remove = useMutation(
    trpc.environments.delete.mutationOptions({
      onSuccess: (deployment) => {
        notifications.show({ message: "Deleting the environment: its services are being removed." });
        router.push(`/deployments/${deployment.id}`);
      },
    }),
  );

  if (!found) return <PageState loading={overview.isLoading} error={overview.error} missing what="environment" />;
  const { project, environment } = found;

  return (
    <>
      <PageHeader
        title={environment.name}
        crumbs={[{ label: "Overview", href: "/" }, { label: project.name, href: `/projects/${project.id}` }, { label: environment.name }]}
        badges={
          <>
            <ModeBadge mode={environment.mode} />
            <StatusBadge status={environment.status} />
            {environment.partlyDeployed && (
              // The latest deployment failed, yet some services went live (issue 16): the badge alone says "failed".
              <Text component="span" fz="sm" c="dimmed">
                {environment.partlyDeployed.deployed} of {environment.partlyDeployed.of} services deployed
              </Text>
            )}
          </>
        }
        description={
          <Group gap="md" component="span">
            <Group gap={4} component="span">
              <IconServer size={14} aria-hidden />
              Runs on cluster {environment.cluster.name}
            </Group>
            {clonedFromId && (
              <Group gap={4} component="span">
                <IconCopy size={14} aria-hidden />
                <span>
                  Cloned from{" "}
                  {source ? (
                    <Anchor component={Link} href={`/environments/${source.environment.id}`} fz="sm">
                      {source.project.id === project.id ? source.environment.name : `${source.project.name} / ${source.environment.name}`}
                    </Anchor>
                  ) : (
                    "another environment"
                  )}
                </span>
              </Group>
            )}
            {details.data?.expiresAt && (
              <span>
                Expires <RelativeTime value={details.data.expiresAt} />
              </span>
            )}
          </Group>
        }
        actions={
          <Can role="DEVELOPER">
            <PromoteEnvironmentButton environment={environment} siblings={project.environments.filter((other) => other.id !== environment.id)} />
            <CloneEnvironmentButton environment={environment} />
            <Button variant="default" color="red" leftSection={<IconTrash size={16} />} onClick={deleteModal.open}>
              Delete environment
            </Button>
          </Can>
        }
      />
      <Section
        title="Services"
        actions={
          <Can role="DEVELOPER">
            <CreateServiceButton environmentId={environment.id} />
          </Can>
        }
      >
        {environment.services.length === 0 ? (
          <Card withBorder padding="lg">
            <Text c="dimmed" fz="sm">
              No service yet. Add an application from a git repository (Slipway detects how to build and run it: Node, Python, static site, Procfile), a
              database or a job. Then deploy the environment.
            </Text>
          </Card>
        ) : (
          <Card withBorder padding={0}>
            <ServicesTable services={environment.services} />
          </Card>
        )}
      </Section>
      {environment.services.length > 0 && <StagesPanel environmentId={environment.id} />}
      {details.data && (
        <SleepPanel key={String(details.data.sleepAfterMinutes)} environmentId={environment.id} sleepAfterMinutes={details.data.sleepAfterMinutes} />
      )}
      <EnvironmentDeployments environmentId={environment.id} environmentName={environment.name} />
      <PreviewEnvironments environmentId={environment.id} mode={environment.mode} />
      <VariablesPanel
        scope="ENVIRONMENT"
        targetId={environment.id}
        description="Given to every service of this environment; they override project variables with the same key."
      />
      <ConfirmModal
        opened={deleting}
        onClose={deleteModal.close}
        title="Delete environment"
        typeToConfirm={environment.name}
        confirmLabel="Delete environment"
        onConfirm={() => remove.mutateAsync({ environmentId: environment.id })}
      >
        This stops and removes the environment <strong>{environment.name}</strong> of project <strong>{project.name}</strong>
        {environment.services.length > 0 ? (
          <>
            , its {environment.services.length} {environment.services.length === 1 ? "service" : "services"} (
            {environment.services.map((service) => service.name).join(", ")})
          </>
        ) : null}{" "}
        and its variables. A DELETE deployment does the work; you will follow it on its page.
      </ConfirmModal>
    </>
  );
}
