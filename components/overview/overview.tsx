"use client";

import { Anchor, Badge, Button, Card, Group, List, Skeleton, Stack, Text, ThemeIcon, Title } from "@mantine/core";
import { EmptyState } from "@mantine/core";
import { IconFolder, IconRocket, IconServer } from "@tabler/icons-react";
import Link from "next/link";
import { Can } from "../auth/can";
import { CreateEnvironmentButton } from "../environments/create-environment";
import { ModeBadge } from "../environments/mode-badge";
import { CopyField } from "../show-once";
import { PageHeader } from "../page-header";
import { CreateProjectButton } from "../projects/create-project";
import { CreateServiceButton } from "../services/create-service";
import { EnvironmentStatus } from "./environment-status";
import { EnvironmentOrigin } from "./environment-origin";
import { OrganizationPreviews } from "./organization-previews";
import { applyFilters, isFiltered, previewEnvironments } from "./overview-filters";
import { OverviewToolbar, useOverviewFilters } from "./overview-toolbar";
import { ServicesTable } from "./services-table";
import { useOverview } from "./use-overview";
import { ApiErrorAlert } from "../api-error-alert";

const CLI_STEPS = [
  "npx slipway project create demo",
  "npx slipway env create demo/dev",
  "npx slipway service create demo/dev/web --git https://github.com/you/app.git",
  "npx slipway deploy demo/dev --watch",
];

function FirstSteps() {
  return (
    <Card withBorder padding="xl">
      <EmptyState
        icon={<IconRocket size={28} />}
        variant="light"
        title="Deploy your first app"
        description="Create a project, give it an environment (development, staging, production…), add a service from a git repository and deploy it."
      >
        <EmptyState.Actions>
          <Can
            role="DEVELOPER"
            fallback={
              <Text c="dimmed" fz="sm">
                Ask a developer or an admin of this organization to create a project.
              </Text>
            }
          >
            <CreateProjectButton />
          </Can>
        </EmptyState.Actions>
      </EmptyState>
      <Stack gap={6} mt="xl" maw={720} mx="auto" w="100%">
        <Text fz="sm" fw={600}>
          Or from the command line
        </Text>
        <CopyField value={CLI_STEPS.join("\n")} label="CLI commands" />
      </Stack>
    </Card>
  );
}

/**
 * Every project, its environments and their services, with status: the dashboard's home. Live
 * (components/live-status.ts); searchable and filtered through the URL's query.
 */
export function Overview() {
  const overview = useOverview();
  const [filters, setFilters] = useOverviewFilters();
  const all = overview.data?.projects ?? [];
  const projects = applyFilters(all, filters);
  return (
    <>
      <PageHeader
        title="Overview"
        description="Projects, their environments and the services running in them."
        actions={
          overview.data && overview.data.projects.length > 0 ? (
            <Can role="DEVELOPER">
              <CreateProjectButton />
            </Can>
          ) : null
        }
      />
      {overview.isLoading && (
        <Stack>
          <Skeleton h={120} />
          <Skeleton h={120} />
        </Stack>
      )}
      <ApiErrorAlert error={overview.error} title="Could not load the overview" />
      {overview.data?.projects.length === 0 && <FirstSteps />}
      {all.length > 0 && <OverviewToolbar filters={filters} onChange={setFilters} projectNames={all.map((project) => project.name)} />}
      <OrganizationPreviews previews={previewEnvironments(projects)} />
      {all.length > 0 && projects.length === 0 && (
        <Card withBorder padding="lg">
          <Group justify="space-between">
            <Text c="dimmed" fz="sm">
              Nothing matches these filters.
            </Text>
            {isFiltered(filters) && (
              <Button variant="light" onClick={() => setFilters({ q: "", project: null, mode: null, status: null })}>
                Show everything
              </Button>
            )}
          </Group>
        </Card>
      )}
      <Stack gap="xl">
        {projects.map((project) => (
          <Card key={project.id} withBorder padding="lg" component="section" aria-labelledby={`project-${project.id}`}>
            <Group justify="space-between" mb="md">
              <Group gap="xs">
                <ThemeIcon variant="light" size="md" aria-hidden>
                  <IconFolder size={16} />
                </ThemeIcon>
                <Title order={2} fz="lg" id={`project-${project.id}`}>
                  <Anchor component={Link} href={`/projects/${project.id}`} inherit c="inherit">
                    {project.name}
                  </Anchor>
                </Title>
                <Badge variant="default" size="sm">
                  {project.environments.length} {project.environments.length === 1 ? "environment" : "environments"}
                </Badge>
              </Group>
            </Group>
            {project.environments.length === 0 && (
              <Group
                justify="space-between"
                p="md"
                style={{ border: "1px dashed var(--mantine-color-default-border)", borderRadius: "var(--mantine-radius-md)" }}
              >
                <Text c="dimmed" fz="sm">
                  No environment yet. An environment (dev, staging, production) is where services run, on one cluster.
                </Text>
                <Can role="DEVELOPER">
                  <CreateEnvironmentButton projectId={project.id} variant="light" />
                </Can>
              </Group>
            )}
            <Stack gap="md">
              {project.environments.map((environment) => (
                <Card
                  key={environment.id}
                  withBorder
                  padding="md"
                  radius="md"
                  bg="var(--mantine-color-default-hover)"
                  component="section"
                  aria-labelledby={`environment-${environment.id}`}
                >
                  <Group justify="space-between" mb={environment.services.length > 0 ? "xs" : 0} wrap="wrap">
                    <Group gap="xs">
                      <Title order={3} fz="md" id={`environment-${environment.id}`}>
                        <Anchor component={Link} href={`/environments/${environment.id}`} inherit c="inherit">
                          {environment.name}
                        </Anchor>
                      </Title>
                      <ModeBadge mode={environment.mode} />
                      <EnvironmentStatus status={environment.status} inProgress={environment.inProgress} />
                    </Group>
                    <Group gap={4}>
                      <IconServer size={14} aria-hidden />
                      <Text fz="xs" c="dimmed">
                        cluster {environment.cluster.name}
                      </Text>
                    </Group>
                  </Group>
                  <EnvironmentOrigin environment={environment} projectName={project.name} />
                  {environment.services.length > 0 ? (
                    <ServicesTable services={environment.services} />
                  ) : (
                    <Group justify="space-between" mt="xs">
                      <List size="sm" c="dimmed">
                        <List.Item>No service yet: add an application from a git repository, then deploy.</List.Item>
                      </List>
                      <Can role="DEVELOPER">
                        <CreateServiceButton environmentId={environment.id} variant="light" />
                      </Can>
                    </Group>
                  )}
                </Card>
              ))}
            </Stack>
          </Card>
        ))}
      </Stack>
    </>
  );
}
