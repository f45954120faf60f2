"use client";

import { Anchor, Button, Card, Group, SimpleGrid, Stack, Text, Title } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { notifications } from "@mantine/notifications";
import { IconServer, IconTrash } from "@tabler/icons-react";
import { useMutation } from "@tanstack/react-query";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { Can } from "../auth/can";
import { ConfirmModal } from "../confirm-delete";
import { CreateEnvironmentButton } from "../environments/create-environment";
import { ModeBadge } from "../environments/mode-badge";
import { PageState } from "../not-found";
import { useOverview } from "../overview/use-overview";
import { PageHeader, Section } from "../page-header";
import { EnvironmentStatus } from "../overview/environment-status";
import { useTRPC } from "../trpc";
import { useInvalidate } from "../use-invalidate";
import { VariablesPanel } from "../variables/variables-panel";

export function ProjectView({ projectId }: { projectId: string }) {
  const trpc = useTRPC();
  const router = useRouter();
  const invalidate = useInvalidate();
  const overview = useOverview();
  const project = overview.data?.projects.find((candidate) => candidate.id === projectId);
  const [deleting, deleteModal] = useDisclosure();
  const remove = useMutation(
    trpc.projects.delete.mutationOptions({
      onSuccess: async (deleted) => {
        notifications.show({ color: "green", message: `Project ${deleted.name} deleted` });
        router.push("/");
        await invalidate();
      },
    }),
  );

  if (!project) return <PageState loading={overview.isLoading} error={overview.error} missing what="project" />;

  return (
    <>
      <PageHeader
        title={project.name}
        crumbs={[{ label: "Overview", href: "/" }, { label: project.name }]}
        description="A project groups the environments of one application or system."
        actions={
          <>
            <Button component={Link} href={`/projects/${project.id}/notifications`} variant="default">
              Notifications
            </Button>
            <Can role="ADMIN">
              <Button variant="default" color="red" leftSection={<IconTrash size={16} />} onClick={deleteModal.open}>
                Delete project
              </Button>
            </Can>
          </>
        }
      />
      <Section
        title="Environments"
        description="Each environment runs on one cluster and is deployed as a whole."
        actions={
          <Can role="DEVELOPER">
            <CreateEnvironmentButton projectId={project.id} />
          </Can>
        }
      >
        {project.environments.length === 0 ? (
          <Card withBorder padding="lg">
            <Text c="dimmed" fz="sm">
              No environment yet. Create one (for example <strong>dev</strong> in development mode), then add services to it.
            </Text>
          </Card>
        ) : (
          <SimpleGrid cols={{ base: 1, sm: 2, lg: 3 }}>
            {project.environments.map((environment) => (
              <Card key={environment.id} withBorder padding="md">
                <Stack gap="xs">
                  <Group justify="space-between" wrap="nowrap">
                    <Title order={3} fz="md">
                      <Anchor component={Link} href={`/environments/${environment.id}`} inherit c="inherit">
                        {environment.name}
                      </Anchor>
                    </Title>
                    <ModeBadge mode={environment.mode} />
                  </Group>
                  <Group gap="xs">
                    <EnvironmentStatus status={environment.status} inProgress={environment.inProgress} />
                    <Text fz="xs" c="dimmed">
                      {environment.services.length} {environment.services.length === 1 ? "service" : "services"}
                    </Text>
                  </Group>
                  <Group gap={4}>
                    <IconServer size={14} aria-hidden />
                    <Text fz="xs" c="dimmed">
                      cluster {environment.cluster.name}
                    </Text>
                  </Group>
                </Stack>
              </Card>
            ))}
          </SimpleGrid>
        )}
      </Section>
      <VariablesPanel
        scope="PROJECT"
        targetId={project.id}
        description="Shared by every service of every environment in this project, unless a narrower scope sets the same key."
      />
      <ConfirmModal
        opened={deleting}
        onClose={deleteModal.close}
        title="Delete project"
        typeToConfirm={project.name}
        confirmLabel="Delete project"
        onConfirm={() => remove.mutateAsync({ projectId: project.id })}
      >
        This deletes the project <strong>{project.name}</strong> and its project variables. Only an empty project can be deleted:{" "}
        {project.environments.length > 0 ? (
          <>
            delete its {project.environments.length} {project.environments.length === 1 ? "environment" : "environments"} (
            {project.environments.map((environment) => environment.name).join(", ")}) first.
          </>
        ) : (
          <>it has no environment.</>
        )}
      </ConfirmModal>
    </>
  );
}
