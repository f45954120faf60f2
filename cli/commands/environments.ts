import { Option, type Command } from "commander";
import { environmentModes } from "../../engine/protocol/snapshot";
import type { Cluster, Deployment, DeploymentRequest, Environment, Preview, PreviewBlueprint } from "../api-types";
import type { ApiClient } from "../client";
import { assertDeletionConfirmable, confirmDeletion } from "../confirm";
import type { Context } from "../context";
import { CliError, exitCodes, usageError } from "../errors";
import { durationSeconds, formatAge, shortCommit, table } from "../format";
import { parsePath, resolveEnvironment } from "../paths";
import { reportDeployment } from "../watch";
import { registerEnvironmentSchedule } from "./environment-schedule";
import { registerEnvironmentSleep } from "./environment-sleep";
import { registerEnvironmentStages } from "./stages";

/** What `POST /environments/{id}/clone` answers: with a deployment, the commit each service built from git deploys (null: its branch's latest). */
type ClonedEnvironment = { environment: Environment; deployment: Deployment | null; commits: { service: string; commit: string | null }[] };

/** `--ttl 2h` as the API's lifetime in seconds. */
function lifetime(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const seconds = durationSeconds(text);
  if (seconds === null || seconds < 60) throw new CliError(`--ttl "${text}": expected a duration of at least a minute, like 30m, 8h or 7d`, exitCodes.usage);
  return seconds;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `--cluster` takes an id or, more memorably, a cluster's name. */
async function clusterId(api: ApiClient, nameOrId: string): Promise<string> {
  if (UUID.test(nameOrId)) return nameOrId;
  const clusters = await api.get<Cluster[]>("/clusters");
  const cluster = clusters.find((c) => c.name === nameOrId);
  if (!cluster) throw new CliError(`Cluster "${nameOrId}" not found`, exitCodes.notFound);
  return cluster.id;
}

export function registerEnvironmentCommands(program: Command, ctx: Context): void {
  const env = program.command("env").description("Environments of a project: list, create, delete, start, stop, schedule, previews");

  env
    .command("list")
    .description("List a project's environments")
    .argument("<project>")
    .option("--json", "print the API objects")
    .action(async (projectName: string, options: { json?: boolean }) => {
      const api = await ctx.api();
      const { projectId } = await api.resolve(parsePath(projectName, { min: 1, max: 1 }).text);
      const environments = await api.get<Environment[]>(`/projects/${projectId}/environments`);
      if (options.json) return ctx.printJson(environments);
      if (environments.length === 0) return ctx.print(`No environments in ${projectName} yet: slipway env create ${projectName}/<env>`);
      const clusters = new Map((await api.get<Cluster[]>("/clusters")).map((c) => [c.id, c.name]));
      ctx.print(
        table(environments, [
          { header: "NAME", value: (e) => e.name },
          { header: "MODE", value: (e) => e.mode },
          { header: "CLUSTER", value: (e) => clusters.get(e.clusterId) ?? e.clusterId },
          { header: "CREATED", value: (e) => formatAge(e.createdAt) },
          { header: "ID", value: (e) => e.id },
        ]),
      );
    });

  env
    .command("create")
    .description("Create an environment")
    .argument("<project/env>")
    .addOption(new Option("--mode <mode>", "what the environment is for (default: the project's matching rule, else DEVELOPMENT)").choices(environmentModes))
    .option("--cluster <id>", "the cluster to deploy to (id or name); the organization's only or `local` one by default")
    .option("--ttl <duration>", "delete the environment this long after its creation (30m, 8h, 7d)")
    .option("--protected", "never delete it when it expires")
    .option("--json", "print the API object")
    .action(async (pathText: string, options: { mode?: string; cluster?: string; ttl?: string; protected?: boolean; json?: boolean }) => {
      const path = parsePath(pathText, { min: 2, max: 2 });
      const api = await ctx.api();
      const { projectId } = await api.resolve(path.project);
      const created = await api.post<Environment>("/environments", {
        projectId,
        name: path.environment,
        mode: options.mode,
        clusterId: options.cluster ? await clusterId(api, options.cluster) : undefined,
        lifetimeSeconds: lifetime(options.ttl),
        protected: options.protected ?? false,
      });
      if (options.json) return ctx.printJson(created);
      ctx.print(`Created environment ${path.text} (${created.mode}, ${created.id})`);
    });

  env
    .command("clone")
    .description("Clone an environment: its services, variables and secrets, into a new independent one")
    .argument("<project/env>", "the environment to copy")
    .requiredOption("--name <name>", "the copy's name")
    .option("--project <project>", "put the copy in another project")
    .option("--cluster <cluster>", "run the copy on another cluster (id or name)")
    .option("--services <names>", "copy only these services, comma-separated (web,worker); all by default")
    .option("--branch <branch>", "every copied service built from git follows this branch instead of its source's")
    .option("--ttl <duration>", "delete the copy this long after its creation (30m, 8h, 7d)")
    .option("--with-data", "copy each database's data into the copy's own database (same cluster)")
    .option("--deploy", "deploy the copy right away (see --commits for which commits)")
    .addOption(
      new Option(
        "--commits <which>",
        "with --deploy: live = the commit each service runs in the source now (its live release's); latest = each branch's latest commit. Default: live, or latest with --branch",
      ).choices(["live", "latest"]),
    )
    .option("--watch", "with --deploy: follow the deployment until it ends")
    .option("--json", "print the API objects")
    .action(
      async (
        pathText: string,
        options: {
          name: string;
          project?: string;
          cluster?: string;
          services?: string;
          branch?: string;
          ttl?: string;
          withData?: boolean;
          deploy?: boolean;
          commits?: "live" | "latest";
          watch?: boolean;
          json?: boolean;
        },
      ) => {
        if (options.commits && !options.deploy) throw usageError("--commits goes with --deploy: a copy not deployed follows its branches");
        const api = await ctx.api();
        const { environmentId } = await resolveEnvironment(api, pathText);
        const projectId = options.project ? (await api.resolve(parsePath(options.project, { min: 1, max: 1 }).text)).projectId : undefined;
        const cloned = await api.post<ClonedEnvironment>(`/environments/${environmentId}/clone`, {
          name: options.name,
          projectId,
          clusterId: options.cluster ? await clusterId(api, options.cluster) : undefined,
          services: options.services?.split(",").map((name) => name.trim()),
          branch: options.branch,
          lifetimeSeconds: lifetime(options.ttl),
          withData: options.withData ?? false,
          deploy: options.deploy ?? false,
          commits: options.commits,
        });
        if (options.json) return ctx.printJson(cloned);
        const target = `${options.project ?? parsePath(pathText, { min: 2, max: 2 }).project}/${cloned.environment.name}`;
        ctx.print(`Cloned ${pathText} into ${target} (${cloned.environment.id})`);
        for (const { service, commit } of cloned.commits)
          ctx.print(`  ${service}: ${commit ? `commit ${shortCommit(commit)}, what ${pathText} runs` : "its branch's latest commit"}`);
        if (cloned.deployment) ctx.exitCode = await reportDeployment(ctx, { deployment: cloned.deployment, merged: false }, target, options);
      },
    );

  env
    .command("reap")
    .description("Delete expired environments now (protected ones are kept) and the files engines keep of deleted services; --dry-run lists them")
    .option("--dry-run", "only list what would be deleted")
    .option("--json", "print the API object")
    .action(async (options: { dryRun?: boolean; json?: boolean }) => {
      const api = await ctx.api();
      const outcome = await api.post<{
        dryRun: boolean;
        environments: { project: string; name: string; expiredAt: string }[];
        leftovers: { cluster: string; serviceId: string; bytes: number; since: string }[];
      }>("/environments/reap", { dryRun: options.dryRun ?? false });
      if (options.json) return ctx.printJson(outcome);
      if (outcome.environments.length === 0 && outcome.leftovers.length === 0) return ctx.print("No expired environments, no leftovers");
      for (const env of outcome.environments)
        ctx.print(`${outcome.dryRun ? "would delete" : "deleting"} ${env.project}/${env.name} (expired ${formatAge(env.expiredAt)})`);
      for (const leftover of outcome.leftovers) {
        const size = `${(leftover.bytes / 1024 / 1024).toFixed(1)} MiB`;
        ctx.print(
          `${outcome.dryRun ? "would remove" : "removing"} ${size} of deleted service ${leftover.serviceId} on cluster ${leftover.cluster} (left since ${formatAge(leftover.since)})`,
        );
      }
    });

  // Start and stop, as the environment's schedule does them: a stopped environment comes back as it was, without a rebuild.
  for (const [name, action, description] of [
    ["start", "RESTART", "Start a stopped environment's services again as they were (no rebuild)"],
    ["stop", "STOP", "Stop an environment's services; its data and releases stay"],
  ] as const) {
    env
      .command(name)
      .description(description)
      .argument("<project/env>")
      .option("--watch", "follow the steps until the deployment ends; exit 1 if it fails or is canceled")
      .option("--json", "print the API object")
      .action(async (pathText: string, options: { watch?: boolean; json?: boolean }) => {
        const api = await ctx.api();
        const { environmentId } = await resolveEnvironment(api, pathText);
        const request = await api.post<DeploymentRequest>("/deployments", { environmentId, action });
        ctx.exitCode = await reportDeployment(ctx, request, pathText, options);
      });
  }

  registerEnvironmentSchedule(env, ctx);
  registerEnvironmentSleep(env, ctx);
  registerEnvironmentStages(env, ctx);

  env
    .command("delete")
    .description("Delete an environment: a DELETE deployment removes what runs, then the environment")
    .argument("<project/env>")
    .option("--yes", "do not ask for the environment's name (required without a terminal)")
    .option("--watch", "follow the deletion until the environment is gone")
    .option("--json", "print the API object")
    .action(async (pathText: string, options: { yes?: boolean; watch?: boolean; json?: boolean }) => {
      const path = parsePath(pathText, { min: 2, max: 2 });
      const deletion = {
        what: `environment ${path.text}`,
        name: path.environment!,
        consequence: "a DELETE deployment removes its services and what they run, then the environment with its deployments",
        yes: options.yes,
      };
      assertDeletionConfirmable(ctx, deletion);
      const api = await ctx.api();
      const { environmentId } = await resolveEnvironment(api, pathText);
      await confirmDeletion(ctx, deletion);
      const deployment = await api.delete<Deployment>(`/environments/${environmentId}`);
      if (!options.watch && !options.json) {
        // The deployment goes with the environment when it succeeds: what to look for is the environment, not the deployment's id.
        ctx.print(`Deleting environment ${path.text}: deployment ${deployment.id} removes what runs, then the environment and its deployments`);
        ctx.print(`slipway env list ${path.project} no longer lists it once it is gone; --watch follows it to the end`);
        return;
      }
      ctx.exitCode = await reportDeployment(ctx, { deployment, merged: false }, path.text, options);
    });

  env
    .command("previews")
    .description("Pull request previews cloned from this environment: --enable makes it their blueprint, --disable stops; without either, list them")
    .argument("<project/env>")
    .option("--enable", "clone this environment for each pull request against the branch its services follow")
    .option(
      "--lifetime <duration>",
      "with --enable: delete a preview without a new commit for this long (30m, 24h, 7d); kept until its pull request closes by default",
    )
    .option("--disable", "stop creating previews from this environment")
    .option("--json", "print the API object(s)")
    .action(async (pathText: string, options: { enable?: boolean; disable?: boolean; lifetime?: string; json?: boolean }) => {
      if (options.enable && options.disable) throw new CliError("give --enable or --disable, not both", exitCodes.usage);
      if (options.lifetime !== undefined && !options.enable) throw new CliError("--lifetime goes with --enable", exitCodes.usage);
      let lifetimeSeconds: number | undefined;
      if (options.lifetime !== undefined) {
        const seconds = durationSeconds(options.lifetime);
        if (seconds === null || seconds < 60)
          throw new CliError(`--lifetime "${options.lifetime}": expected a duration of at least a minute, like 30m, 24h or 7d`, exitCodes.usage);
        lifetimeSeconds = seconds;
      }
      const api = await ctx.api();
      const { environmentId } = await resolveEnvironment(api, pathText);
      if (options.enable || options.disable) {
        const result = await api.put<PreviewBlueprint>(`/environments/${environmentId}/preview-blueprint`, {
          enabled: options.enable === true,
          lifetimeSeconds,
        });
        if (options.json) return ctx.printJson(result);
        if (!result.enabled) return ctx.print(`${pathText} no longer creates previews (existing ones stay until their pull requests close)`);
        return ctx.print(
          `${pathText} is a preview blueprint: each pull request against its services' branch gets an environment pr-<number>${
            result.lifetimeSeconds ? `, deleted after ${formatLifetime(result.lifetimeSeconds)} without a new commit` : ""
          }`,
        );
      }
      const previews = await api.get<Preview[]>("/git/previews", { environmentId });
      if (options.json) return ctx.printJson(previews);
      if (previews.length === 0) {
        // "Enable them" only when they are not: a blueprint whose pull requests all closed has none, and says so.
        const { previewBlueprint } = await api.get<Environment>(`/environments/${environmentId}`);
        return ctx.print(
          previewBlueprint
            ? `No previews of ${pathText} now: it is a preview blueprint, and no pull request has one open`
            : `No previews of ${pathText}: enable them with slipway env previews ${pathText} --enable`,
        );
      }
      const project = parsePath(pathText, { min: 2, max: 2 }).project;
      ctx.print(
        table(previews, [
          { header: "ENVIRONMENT", value: (p) => `${project}/${p.environmentName}` },
          { header: "PR", value: (p) => `#${p.number}` },
          { header: "BRANCH", value: (p) => p.headBranch },
          { header: "COMMIT", value: (p) => shortCommit(p.headCommit) },
          { header: "EXPIRES", value: (p) => (p.expiresAt ? new Date(p.expiresAt).toISOString().replace(/\.\d+Z$/, "Z") : null) },
          { header: "CLOSED", value: (p) => (p.closedAt ? formatAge(p.closedAt) : null) },
          { header: "CREATED", value: (p) => formatAge(p.createdAt) },
        ]),
      );
    });
}

function formatLifetime(seconds: number): string {
  if (seconds % 86_400 === 0 && seconds >= 2 * 86_400) return `${seconds / 86_400}d`;
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}
