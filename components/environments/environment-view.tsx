"use client";

import { Anchor, Card, Group, Text } from "@mantine/core";
import { IconCopy, IconServer } from "@tabler/icons-react";
import { useQuery } from "@tanstack/react-query";
import Link from "next/link";
import { Can } from "../auth/can";
import { DeploymentActions } from "../deployments/deployment-actions";
import { EnvironmentDeployments, useEnvironmentDeployments } from "../deployments/environment-deployments";
import { PreviewEnvironments } from "../git/preview-environments";
import { PageState } from "../not-found";
import { ServicesTable } from "../overview/services-table";
import { findEnvironment, useOverview } from "../overview/use-overview";
import { PageHeader, Section } from "../page-header";
import { RelativeTime } from "../relative-time";
import { CreateServiceButton } from "../services/create-service";
import { EnvironmentStatus } from "../overview/environment-status";
import { useTRPC } from "../trpc";
import { VariablesPanel } from "../variables/variables-panel";
import { CloneEnvironmentButton } from "./clone-environment";
import { DeleteEnvironmentButton } from "./delete-environment";
import { ModeBadge } from "./mode-badge";
import { PromoteEnvironmentButton } from "./promote-environment";
import { SleepPanel } from "./sleep-panel";
import { StagesPanel } from "./stages-panel";

export function EnvironmentView({ environmentId }: { environmentId: string }) {
  const trpc = useTRPC();
  const overview = useOverview();
  const found = findEnvironment(overview.data, environmentId);
  // The overview has no lineage or expiry: they come with the environment itself.
  const details = useQuery(trpc.environments.get.queryOptions({ environmentId }));
  const clonedFromId = details.data?.clonedFromId ?? null;
  const source = clonedFromId ? findEnvironment(overview.data, clonedFromId) : null;
  // The same query as the Deployments section's: whether the header's main button says Deploy or Redeploy.
  const deployedBefore = (useEnvironmentDeployments(environmentId).data ?? []).some((deployment) => deployment.action === "DEPLOY");

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
            <EnvironmentStatus status={environment.status} inProgress={environment.inProgress} />
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
            {/* The page's main action first, where a newcomer looks for it (h4 F13); nothing to deploy without a service. */}
            {environment.services.length > 0 && (
              <DeploymentActions environmentId={environment.id} targetName={`the ${environment.name} environment`} deployedBefore={deployedBefore} />
            )}
            <PromoteEnvironmentButton environment={environment} siblings={project.environments.filter((other) => other.id !== environment.id)} />
            <CloneEnvironmentButton environment={environment} />
            <DeleteEnvironmentButton project={project} environment={environment} />
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
      <EnvironmentDeployments environmentId={environment.id} />
      <PreviewEnvironments environmentId={environment.id} mode={environment.mode} />
      <VariablesPanel
        scope="ENVIRONMENT"
        targetId={environment.id}
        description="Given to every service of this environment; they override project variables with the same key."
      />
    </>
  );
}
