import { describeTally, failuresOf, tallyServices } from "../engine/protocol/failure";
import type { Deployment, DeploymentChanges, DeploymentEvent, DeploymentSummary } from "./api-types";
import { elapsed, formatAge, formatDuration, keyValues, shortCommit, table } from "./format";

/**
 * `slipway deployment <id>` in words (issue 15, items 2 and 3): who started it, its steps with
 * their durations, why it failed (the failing step and its last lines), and what it changed
 * since the last successful deployment of each service. Variables appear by key only. A deploy
 * leads with which services are live on which release, stage by stage (issue 16).
 */
export function describeDeployment(
  deployment: Deployment,
  events: readonly DeploymentEvent[],
  changes: DeploymentChanges,
  summary: DeploymentSummary = [],
): string {
  const name = (serviceId: string | null) => (serviceId ? (deployment.serviceNames[serviceId] ?? serviceId.slice(0, 8)) : "deployment");
  const sections = [
    keyValues([
      ["deployment", deployment.id],
      ["action", `${deployment.action} ${deployment.status}`],
      ["triggered by", triggerText(deployment.trigger)],
      ["created", formatAge(deployment.createdAt)],
      ["duration", elapsed(deployment.startedAt, deployment.finishedAt)],
    ]),
  ];
  if (deployment.status === "BUILD_ERROR" || deployment.status === "DEPLOYMENT_ERROR") sections.push(describeFailures(deployment, events, name));
  if (deployment.action === "DEPLOY" && summary.length > 0) sections.push(releaseTable(summary));
  const steps = stepRows(events, name);
  if (steps.length > 0) {
    sections.push(
      table(steps, [
        { header: "SERVICE", value: (s) => s.service },
        { header: "STEP", value: (s) => s.step },
        { header: "STATE", value: (s) => s.state },
        { header: "DURATION", value: (s) => s.duration },
      ]),
    );
  }
  if (changes.length > 0) sections.push(["What changed", ...changes.map(describeChanges)].join("\n"));
  return sections.join("\n\n");
}

/**
 * Why it failed, as the deployment's page says it: how many services failed and went live (when
 * it acted on several), then every failed service's step, why in a line, and its last lines.
 */
function describeFailures(deployment: Deployment, events: readonly DeploymentEvent[], name: (serviceId: string | null) => string): string {
  const failures = failuresOf(events);
  const targeted = Object.keys(deployment.serviceNames);
  const tally =
    targeted.length > 1 && failures[0]?.serviceId ? [describeTally(deployment.action, tallyServices(deployment.action, targeted, events), name)] : [];
  const each = failures.map((failure) =>
    [`Failed: ${name(failure.serviceId)} ${failure.step}`, `  ${failure.summary}`, ...failure.lines.map((line) => `  | ${line}`)].join("\n"),
  );
  return [...tally, ...each].join("\n");
}

/** Per service: its stage, what became of it, and the release that serves it (this deployment's or an earlier one's). */
function releaseTable(summary: DeploymentSummary): string {
  return table(summary, [
    { header: "SERVICE", value: (s) => s.name },
    { header: "STAGE", value: (s) => s.stage },
    { header: "OUTCOME", value: (s) => s.outcome },
    {
      header: "LIVE RELEASE",
      value: ({ release }) => {
        if (!release) return "none";
        const commit = release.commit ? ` ${shortCommit(release.commit)}` : "";
        return release.thisDeployment ? `this deployment${commit}` : `deployment ${release.deploymentId}${commit} (earlier)`;
      },
    },
  ]);
}

function triggerText(trigger: Deployment["trigger"]): string {
  const by = `${trigger.by} (${trigger.via})`;
  switch (trigger.kind) {
    case "rollback":
      return `rollback to ${trigger.fromDeploymentId} by ${by}`;
    case "promote":
      return `promotion from ${trigger.fromEnvironment} (deployment ${trigger.fromDeploymentId}) by ${by}`;
    case "clone":
      return `clone of ${trigger.fromEnvironment} by ${by}`;
    case "push":
      return `git push by ${trigger.by}`;
    case "schedule":
      return "the environment's schedule";
    default:
      return by;
  }
}

/** One row per service and step, its latest state (a re-dispatched step shows its last attempt). */
function stepRows(events: readonly DeploymentEvent[], name: (serviceId: string | null) => string) {
  const rows = new Map<string, { service: string; step: string; state: string; duration: string | null }>();
  for (const event of events) {
    if (!event.serviceId || event.step === "deployment" || event.step === "lease") continue;
    const key = `${event.serviceId}:${event.step}`;
    const duration = event.durationMs === null ? null : formatDuration(event.durationMs);
    rows.set(key, { service: name(event.serviceId), step: event.step, state: event.status === "started" ? "running" : event.status, duration });
  }
  return [...rows.values()];
}

function describeChanges(service: DeploymentChanges[number]): string {
  const since = service.previousDeploymentId ? `since deployment ${service.previousDeploymentId}` : "first successful deployment";
  const lines = [`${service.name} (${since})`];
  const { commits } = service;
  if (commits) {
    const range = !commits.to
      ? "known once cloned"
      : commits.from && commits.from !== commits.to
        ? `${shortCommit(commits.from)}..${shortCommit(commits.to)}`
        : `${shortCommit(commits.to)}${commits.from ? " (unchanged)" : ""}`;
    lines.push(`  commit     ${range}${commits.compareUrl ? `  ${commits.compareUrl}` : ""}`);
  }
  if (service.previousDeploymentId) {
    for (const field of service.config) {
      const what = field.secret ? `${field.change} (secret)` : `${field.from ?? "-"} -> ${field.to ?? "-"}`;
      lines.push(`  config     ${field.path}: ${what}`);
    }
  }
  for (const variable of service.variables) {
    lines.push(`  variable   ${variable.key} ${variable.change}${variable.secret ? " (secret)" : ""}`);
  }
  if (service.previousDeploymentId && service.config.length === 0 && service.variables.length === 0) lines.push("  no configuration or variable changed");
  return lines.join("\n");
}
