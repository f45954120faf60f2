import type { Command } from "commander";
import type {
  Cluster,
  Deployment,
  DeploymentChanges,
  DeploymentEvent,
  DeploymentRequest,
  DeploymentSummary,
  Environment,
  Overview,
  Service,
} from "../api-types";
import type { Context } from "../context";
import { describeDeployment } from "../deployment-details";
import { usageError } from "../errors";
import { elapsed, firstLine, formatAge, keyValues, shortCommit, table } from "../format";
import { parsePath, resolveEnvironment } from "../paths";
import { reportDeployment } from "../watch";

type Action = DeploymentRequest["deployment"]["action"];

const actions: { name: string; action: Action; description: string }[] = [
  { name: "deploy", action: "DEPLOY", description: "Build and deploy an environment, or one of its services" },
  { name: "stop", action: "STOP", description: "Stop an environment's services, or one of them" },
  { name: "restart", action: "RESTART", description: "Restart an environment's services, or one of them, without a rebuild" },
];

function registerActions(program: Command, ctx: Context): void {
  for (const { name, action, description } of actions) {
    const command = program
      .command(name)
      .description(description)
      .argument("<project/env[/service]>")
      .option("--watch", "follow the steps until the deployment ends; exit 1 if it fails or is canceled")
      .option("--json", "print the API object (with --watch: one JSON object per event, then the deployment)");
    if (action === "DEPLOY")
      command
        .option("--commit <sha>", "with a service path: deploy this exact commit instead of the branch it follows")
        // commander reads --no-cache as `cache: false` (true when not given).
        .option("--no-cache", "build without the build cache: no cached packages or framework caches restored; the fresh ones are kept");
    command.action(async (pathText: string, options: { watch?: boolean; json?: boolean; commit?: string; cache?: boolean }) => {
      const path = parsePath(pathText, { min: 2, max: 3 });
      const commit = options.commit;
      if (commit !== undefined && !/^[0-9a-f]{7,40}$/.test(commit))
        throw usageError(`--commit "${commit}": expected a commit hash (7 to 40 lowercase hex digits)`);
      if (commit !== undefined && path.depth !== 3) throw usageError("--commit needs a service path: <project>/<env>/<service>");
      const api = await ctx.api();
      const resolved = await api.resolve(path.text);
      const request = await api.post<DeploymentRequest>("/deployments", {
        environmentId: resolved.environmentId,
        action,
        serviceIds: resolved.serviceId ? [resolved.serviceId] : undefined,
        refs: commit !== undefined && resolved.serviceId ? { [resolved.serviceId]: { commit } } : undefined,
        noCache: options.cache === false ? true : undefined,
      });
      ctx.exitCode = await reportDeployment(ctx, request, path.text, options);
    });
  }
}

export function registerDeploymentCommands(program: Command, ctx: Context): void {
  registerActions(program, ctx);

  program
    .command("rollback")
    .description("Redeploy an earlier successful deployment as it was (its commits, configuration and variables), or one service of it")
    .argument("<project/env[/service]>")
    .option("--to <deployment-id>", "the deployment to return to (default: the last successful one that ran other commits than the current)")
    .option("--watch", "follow the steps until the deployment ends; exit 1 if it fails or is canceled")
    .option("--json", "print the API object (with --watch: one JSON object per event, then the deployment)")
    .action(async (pathText: string, options: { to?: string; watch?: boolean; json?: boolean }) => {
      const path = parsePath(pathText, { min: 2, max: 3 });
      const api = await ctx.api();
      const resolved = await api.resolve(path.text);
      const deployment = await api.post<Deployment>(`/environments/${resolved.environmentId}/rollback`, {
        to: options.to,
        serviceIds: resolved.serviceId ? [resolved.serviceId] : undefined,
      });
      if (!options.json && !options.watch && deployment.rollbackOf) ctx.print(`Rolling back to deployment ${deployment.rollbackOf}`);
      ctx.exitCode = await reportDeployment(ctx, { deployment, merged: false }, path.text, options);
    });

  program
    .command("promote")
    .description("Deploy into an environment the commits another one of the project runs, service by name (staging to production)")
    .argument("<project/from-env>")
    .argument("<to-env>", "an environment of the same project")
    .option("--watch", "follow the steps until the deployment ends; exit 1 if it fails or is canceled")
    .option("--json", "print the API object (with --watch: one JSON object per event, then the deployment)")
    .action(async (fromText: string, toName: string, options: { watch?: boolean; json?: boolean }) => {
      const from = parsePath(fromText, { min: 2, max: 2 });
      const api = await ctx.api();
      const [source, target] = await Promise.all([resolveEnvironment(api, from.text), resolveEnvironment(api, `${from.project}/${toName}`)]);
      const request = await api.post<DeploymentRequest>(`/environments/${target.environmentId}/promote`, { fromEnvironmentId: source.environmentId });
      ctx.exitCode = await reportDeployment(ctx, request, `${from.project}/${toName} (from ${from.text})`, options);
    });

  program
    .command("cancel")
    .description("Cancel a deployment: a queued one at once, a running one at the engine's next safe point")
    .argument("<deployment-id>")
    .option("--json", "print the API object")
    .action(async (deploymentId: string, options: { json?: boolean }) => {
      const deployment = await (await ctx.api()).post<Deployment>(`/deployments/${deploymentId}/cancel`);
      if (options.json) return ctx.printJson(deployment);
      ctx.print(`Deployment ${deployment.id} ${deployment.status}`);
    });

  program
    .command("status")
    .description("An environment's status, its services (status, runtime state, restarts, commit) and its last deployment")
    .argument("<project/env>")
    .option("--json", "print { environment, status, inProgress, services (each with its status), lastDeployment } as API objects")
    .action(async (pathText: string, options: { json?: boolean }) => {
      const api = await ctx.api();
      const { environmentId } = await resolveEnvironment(api, pathText);
      const [environment, listed, [lastDeployment], overview] = await Promise.all([
        api.get<Environment>(`/environments/${environmentId}`),
        api.get<Service[]>(`/environments/${environmentId}/services`),
        api.get<Deployment[]>(`/environments/${environmentId}/deployments`, { limit: 1 }),
        api.get<Overview>("/overview"),
      ]);
      // The statuses the dashboard shows, decided by the server (server/overview/live-status.ts): a service's own, not its deployment's.
      const shown = overview.projects.flatMap((project) => project.environments).find((candidate) => candidate.id === environmentId);
      const statusOf = new Map(shown?.services.map((service) => [service.id, service.status]));
      const services = listed.map((service) => ({ ...service, status: statusOf.get(service.id) ?? null }));
      const inProgress = shown?.inProgress ?? [];
      if (options.json) return ctx.printJson({ environment, status: shown?.status ?? null, inProgress, services, lastDeployment: lastDeployment ?? null });
      const cluster = (await api.get<Cluster[]>("/clusters")).find((c) => c.id === environment.clusterId);
      const lines = [
        keyValues([
          ["environment", `${pathText} (${environment.mode})`],
          [
            "status",
            [shown?.status ?? "unknown", ...inProgress.map((d) => `${d.action} ${d.status} of ${d.services.join(", ")} ${d.deploymentId}`)].join("; "),
          ],
          ["cluster", cluster ? `${cluster.name}${cluster.connected ? "" : " (engine disconnected)"}` : environment.clusterId],
          ["last deployment", lastDeployment ? describeLast(lastDeployment) : "none yet"],
        ]),
        "",
        services.length === 0
          ? "No services yet"
          : table(services, [
              { header: "SERVICE", value: (s) => s.name },
              { header: "STATUS", value: (s) => s.status },
              { header: "STATE", value: (s) => s.runtime?.state ?? "not deployed" },
              { header: "RESTARTS", value: (s) => s.runtime?.restarts ?? null },
              { header: "COMMIT", value: (s) => shortCommit(s.runtime?.commit) },
              { header: "REPORTED", value: (s) => (s.runtime ? formatAge(s.runtime.reportedAt) : null) },
            ]),
      ];
      ctx.print(lines.join("\n"));
    });

  program
    .command("deployments")
    .description("An environment's deployment history, newest first")
    .argument("<project/env>")
    .option("--limit <n>", "how many (1-200)", "20")
    .option("--json", "print the API objects")
    .action(async (pathText: string, options: { limit: string; json?: boolean }) => {
      const api = await ctx.api();
      const { environmentId } = await resolveEnvironment(api, pathText);
      const deployments = await api.get<Deployment[]>(`/environments/${environmentId}/deployments`, { limit: options.limit });
      if (options.json) return ctx.printJson(deployments);
      if (deployments.length === 0) return ctx.print(`No deployments of ${pathText} yet: slipway deploy ${pathText}`);
      ctx.print(
        table(deployments, [
          { header: "ID", value: (d) => d.id },
          { header: "ACTION", value: (d) => d.action },
          { header: "STATUS", value: (d) => d.status },
          { header: "CREATED", value: (d) => formatAge(d.createdAt) },
          { header: "DURATION", value: (d) => elapsed(d.startedAt, d.finishedAt) },
          { header: "BY", value: (d) => `${d.actor} (${d.origin})` },
          { header: "MESSAGE", value: (d) => firstLine(d.statusMessage) },
          { header: "COMMIT", value: describeCommits },
        ]),
      );
    });

  program
    .command("deployment")
    .description(
      "One deployment: who started it, which services it left live on which release, its steps and their durations, why it failed, and what changed since the previous successful one",
    )
    .argument("<deployment-id>")
    .option("--json", "print { deployment, events, changes, summary } as API objects")
    .action(async (deploymentId: string, options: { json?: boolean }) => {
      if (!/^[0-9a-f-]{36}$/.test(deploymentId)) throw usageError(`"${deploymentId}" is not a deployment id (slipway deployments <project/env> lists them)`);
      const api = await ctx.api();
      const [deployment, events, changes, summary] = await Promise.all([
        api.get<Deployment>(`/deployments/${deploymentId}`),
        api.get<DeploymentEvent[]>(`/deployments/${deploymentId}/events`),
        api.get<DeploymentChanges>(`/deployments/${deploymentId}/changes`),
        api.get<DeploymentSummary>(`/deployments/${deploymentId}/summary`),
      ]);
      if (options.json) return ctx.printJson({ deployment, events, changes, summary });
      ctx.print(describeDeployment(deployment, events, changes, summary));
    });
}

function describeLast(d: Deployment): string {
  const took = elapsed(d.startedAt, d.finishedAt);
  const message = firstLine(d.statusMessage);
  return `${d.action} ${d.status} ${formatAge(d.createdAt)}${took ? `, took ${took}` : ""}${message ? ` (${message})` : ""} ${d.id}`;
}

/** What a deployment's commits say: `abc1234 Fix the login form (Ada)` for one, the first and a count for more. */
function describeCommits(deployment: Deployment): string | null {
  const entries = Object.entries(deployment.commits);
  const [first] = entries;
  if (!first) return null;
  const [serviceId, commit] = first;
  const info = deployment.commitDetails[serviceId];
  const subject = info ? ` ${info.subject.length > 60 ? `${info.subject.slice(0, 59)}…` : info.subject} (${info.author})` : "";
  return `${shortCommit(commit)}${subject}${entries.length > 1 ? ` +${entries.length - 1} more` : ""}`;
}
