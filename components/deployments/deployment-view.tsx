"use client";

import { Alert, Button, Code, Group, Text } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { IconCircleX } from "@tabler/icons-react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useCallback, useEffect, useMemo } from "react";
import { Can } from "../auth/can";
import { CommitSha } from "../copy-button";
import { apiError } from "../errors";
import { LogViewer } from "../logs/log-viewer";
import type { FetchLogPage } from "../logs/use-log-stream";
import { PageState } from "../not-found";
import { findEnvironment, useOverview } from "../overview/use-overview";
import { environmentCrumbs, PageHeader, Section } from "../page-header";
import { RelativeTime, useNow } from "../relative-time";
import { StatusBadge } from "../status-badge";
import { useTRPC, useTRPCClient } from "../trpc";
import { describeTally, failuresOf, tallyServices, type Failure } from "../../engine/protocol/failure";
import { DeploymentStepper } from "./deployment-stepper";
import { useEnvironmentDeployments } from "./environment-deployments";
import { deploymentDurationMs, formatDuration } from "./format";
import { RollbackButton } from "./rollback-button";
import { LiveReleases } from "./live-releases";
import { deriveStepper, isTerminal, STEP_LABELS, type Deployment, type DeploymentEvent } from "./steps";
import { canRollBackTo, deploymentTitle, shortId } from "./title";
import { TriggeredBy } from "./triggered-by";
import { useDeploymentEvents } from "./use-deployment-events";
import { WhatChanged } from "./what-changed";

const FAILED = new Set(["BUILD_ERROR", "DEPLOYMENT_ERROR"]);

/** What a failed step printed last: a build's output, or a release's runtime output when it failed its health check. */
function linesLabel(step: Failure["step"]): string {
  if (step === "build") return "Last lines of the build";
  return step === "health_check" || step === "start" ? "Last runtime output" : "Last lines";
}

/** One failed service: its step, why in a line, and what it printed last (open for the first failure, a click away for the others). */
function FailureEntry({ failure, label, heading, open }: { failure: Failure; label: string; heading: boolean; open: boolean }) {
  return (
    <div role="group" aria-label={label}>
      {heading && (
        <Text size="sm" fw={600} mt="xs">
          {label}
        </Text>
      )}
      <Text size="sm" style={{ whiteSpace: "pre-wrap" }}>
        {failure.summary}
      </Text>
      {failure.lines.length > 0 && (
        <details open={open}>
          <Text component="summary" size="xs" fw={500} mt="xs" style={{ cursor: "pointer" }}>
            {linesLabel(failure.step)}
          </Text>
          <Code block mt={4} aria-label="Last output lines" style={{ maxHeight: 320, overflow: "auto" }}>
            {failure.lines.join("\n")}
          </Code>
        </details>
      )}
    </div>
  );
}

/**
 * A failed deployment's page leads with why (issue 15, item 3): every service whose step failed,
 * each with why in a line and the last lines it printed, and how many services went live all the
 * same (services of a stage fail apart), all from the recorded events. The CLI's
 * `slipway deployment` says the same words (cli/deployment-details.ts).
 */
function FailureCallout({
  deployment,
  events,
  serviceNames,
}: {
  deployment: Deployment;
  events: readonly DeploymentEvent[];
  serviceNames: Record<string, string>;
}) {
  const failures = failuresOf(events);
  const name = (serviceId: string) => serviceNames[serviceId] ?? shortId(serviceId);
  const labelOf = (failure: Failure) => (failure.serviceId ? `${name(failure.serviceId)}: ${STEP_LABELS[failure.step]} failed` : "The deployment failed");
  const targeted = Object.keys(deployment.serviceNames);
  const [first] = failures;
  // A deployment of one service names it and its step; of several, how many failed and how many went live.
  const single = failures.length === 1 && targeted.length <= 1;
  const title = !first?.serviceId
    ? deployment.status === "BUILD_ERROR"
      ? "The build failed"
      : "The deployment failed"
    : single
      ? labelOf(first)
      : describeTally(deployment.action, tallyServices(deployment.action, targeted, events), name);
  return (
    <Alert color="red" role="alert" title={title} mb="lg">
      {failures.length === 0 && (
        <Text size="sm" style={{ whiteSpace: "pre-wrap" }}>
          {deployment.statusMessage}
        </Text>
      )}
      {failures.map((failure, index) => (
        <FailureEntry
          key={failure.serviceId ?? "deployment"}
          failure={failure}
          label={labelOf(failure)}
          heading={!single && !!failure.serviceId}
          open={index === 0}
        />
      ))}
      <Text size="xs" c="dimmed" mt={4}>
        The previous release, if any, keeps serving.
      </Text>
    </Alert>
  );
}

function Outcome({ deployment, events, serviceNames }: { deployment: Deployment; events: readonly DeploymentEvent[]; serviceNames: Record<string, string> }) {
  if (FAILED.has(deployment.status)) return <FailureCallout deployment={deployment} events={events} serviceNames={serviceNames} />;
  if (!deployment.statusMessage) return null;
  if (deployment.status === "CANCELED" || deployment.status === "CANCELING") {
    return (
      <Alert color="yellow" title={deployment.status === "CANCELED" ? "Canceled" : "Canceling"} mb="lg">
        {deployment.statusMessage}
      </Alert>
    );
  }
  return null;
}

function CancelButton({ deployment }: { deployment: Deployment }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const cancel = useMutation(
    trpc.deployments.cancel.mutationOptions({
      onSuccess: (updated) => queryClient.setQueryData(trpc.deployments.get.queryKey({ deploymentId: updated.id }), updated),
      onError: (error) => notifications.show({ color: "red", title: "Not canceled", message: apiError(error).message }),
    }),
  );
  if (isTerminal(deployment.status)) return null;
  return (
    <Can role="DEVELOPER">
      <Button
        variant="default"
        color="red"
        leftSection={<IconCircleX size={16} aria-hidden />}
        loading={cancel.isPending}
        disabled={deployment.status === "CANCELING"}
        onClick={() => cancel.mutate({ deploymentId: deployment.id })}
      >
        {deployment.status === "CANCELING" ? "Canceling…" : "Cancel"}
      </Button>
    </Can>
  );
}

/** The deployment's commits, each with the services that run it (seven services of one repository share one). */
function commitsByService(commits: Record<string, string>, serviceNames: Record<string, string>): { sha: string; names: string[] }[] {
  const bySha = new Map<string, string[]>();
  for (const [serviceId, sha] of Object.entries(commits)) bySha.set(sha, [...(bySha.get(sha) ?? []), serviceNames[serviceId] ?? shortId(serviceId)]);
  return [...bySha].map(([sha, names]) => ({ sha, names }));
}

/** A deployment: what it is, its live steps per service, and its build and deploy logs. */
export function DeploymentView({ deploymentId }: { deploymentId: string }) {
  const trpc = useTRPC();
  const client = useTRPCClient();
  // Live updates drive the page; while the deployment runs it is also re-read every few
  // seconds, so a notification lost on the way costs a few seconds, never a stale status.
  const query = useQuery({
    ...trpc.deployments.get.queryOptions({ deploymentId }),
    refetchInterval: (current) => (current.state.data && !isTerminal(current.state.data.status) ? 3_000 : false),
  });
  const deployment = query.data;
  const { events, error: eventsError, retry } = useDeploymentEvents(deploymentId);
  // The steps catch up with the status: a status change means events to read.
  const status = deployment?.status;
  useEffect(() => {
    if (status) retry();
  }, [status, retry]);
  const overview = useOverview();
  const place = deployment ? findEnvironment(overview.data, deployment.environmentId) : null;
  const services = useQuery({
    ...trpc.services.list.queryOptions({ environmentId: deployment?.environmentId ?? "" }),
    enabled: !!deployment,
  });
  const now = useNow(deployment && !isTerminal(deployment.status) ? 1000 : 60_000);

  const currentNames = useMemo(() => {
    const names: Record<string, string> = {};
    for (const service of services.data ?? []) names[service.id] = service.name;
    return names;
  }, [services.data]);
  // The snapshot names what the deployment acted on, a service deleted since included.
  const serviceNames = useMemo(() => ({ ...currentNames, ...deployment?.serviceNames }), [currentNames, deployment?.serviceNames]);
  const history = useEnvironmentDeployments(deployment?.environmentId ?? "", !!deployment);

  const model = useMemo(() => {
    if (!deployment) return null;
    const targeted = deployment.serviceIds ?? (services.data ?? []).map((service) => service.id);
    const kinds = Object.fromEntries((services.data ?? []).map((service) => [service.id, service.kind]));
    return deriveStepper(deployment, targeted, events, kinds);
  }, [deployment, services.data, events]);

  const fetchPage: FetchLogPage = useCallback(
    (request) =>
      client.deployments.logs.query("tail" in request ? { deploymentId, tail: request.tail } : { deploymentId, after: request.after, limit: request.limit }),
    [client, deploymentId],
  );

  if (!deployment) return <PageState loading={query.isPending} error={query.error} missing={!query.isPending && !query.error} what="deployment" />;

  const commits = commitsByService(deployment.commits, serviceNames);
  const title = deploymentTitle(deployment, currentNames);
  const crumbs = [
    ...environmentCrumbs(place, [{ label: "Environment", href: `/environments/${deployment.environmentId}` }]),
    { label: `Deployment ${shortId(deployment.id)}` },
  ];

  return (
    <>
      <PageHeader
        title={title}
        crumbs={crumbs}
        badges={<StatusBadge status={deployment.status} size="md" />}
        actions={
          <Group gap="xs">
            <CancelButton deployment={deployment} />
            {canRollBackTo(deployment, history.data ?? []) && <RollbackButton deployment={deployment} currentNames={currentNames} size="sm" />}
          </Group>
        }
        description={
          <Group component="span" gap="lg" wrap="wrap">
            <TriggeredBy trigger={deployment.trigger} />
            <span>
              Created <RelativeTime value={deployment.createdAt} />
            </span>
            <span aria-label="Duration">Duration {formatDuration(deploymentDurationMs(deployment, now))}</span>
            {commits.length > 0 && (
              <Group component="span" gap="xs" wrap="wrap">
                {commits.length === 1 ? "Commit" : "Commits"}
                {commits.map(({ sha, names }) => (
                  <Group key={sha} component="span" gap={4} wrap="nowrap" aria-label={`Commit of ${names.join(", ")}`}>
                    <Text span size="sm" c="dimmed">
                      {names.join(", ")}
                    </Text>
                    <CommitSha sha={sha} />
                  </Group>
                ))}
              </Group>
            )}
            {deployment.attempt > 1 && <span>Attempt {deployment.attempt}</span>}
          </Group>
        }
      />
      <Outcome deployment={deployment} events={events} serviceNames={serviceNames} />
      {eventsError && (
        <Alert color="red" title="Could not load the steps" mb="md">
          <Group justify="space-between">
            <Text size="sm">{eventsError}</Text>
            <Button size="xs" variant="light" color="red" onClick={retry}>
              Retry
            </Button>
          </Group>
        </Alert>
      )}
      {deployment.action === "DEPLOY" && (
        <Section title="Live releases" description="Per service: its stage, what this deployment did, and the release that serves it now.">
          <LiveReleases deployment={deployment} />
        </Section>
      )}
      <Section title="Steps">{model && <DeploymentStepper model={model} serviceNames={serviceNames} finished={isTerminal(deployment.status)} />}</Section>
      <Section
        title="What changed"
        description="Since the last successful deployment of each service: commits, configuration and variable keys (values never shown)."
      >
        <WhatChanged deployment={deployment} />
      </Section>
      <Section title="Logs" description="Build and deploy output of this deployment, as the engine writes it.">
        <LogViewer
          key={deploymentId}
          room={`deployment:${deploymentId}`}
          fetchPage={fetchPage}
          label="Deployment logs"
          fileName={`deployment-${deploymentId.slice(0, 8)}`}
          emptyText={isTerminal(deployment.status) ? "This deployment wrote no log lines." : "No output yet."}
        />
      </Section>
    </>
  );
}
