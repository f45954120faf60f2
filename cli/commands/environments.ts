import { Option, type Command } from "commander";
import { environmentModes } from "../../engine/protocol/snapshot";
import type { Cluster, Deployment, Environment } from "../api-types";
import type { ApiClient } from "../client";
import type { Context } from "../context";
import { CliError, exitCodes } from "../errors";
import { formatAge, table } from "../format";
import { parsePath, resolveEnvironment } from "../paths";
import { reportDeployment } from "../watch";

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
  const env = program.command("env").description("Environments of a project: list, create, delete");

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
    .addOption(new Option("--mode <mode>", "what the environment is for").choices(environmentModes).default("DEVELOPMENT"))
    .option("--cluster <id>", "the cluster to deploy to (id or name); the organization's only or `local` one by default")
    .option("--json", "print the API object")
    .action(async (pathText: string, options: { mode: string; cluster?: string; json?: boolean }) => {
      const path = parsePath(pathText, { min: 2, max: 2 });
      const api = await ctx.api();
      const { projectId } = await api.resolve(path.project);
      const created = await api.post<Environment>("/environments", {
        projectId,
        name: path.environment,
        mode: options.mode,
        clusterId: options.cluster ? await clusterId(api, options.cluster) : undefined,
      });
      if (options.json) return ctx.printJson(created);
      ctx.print(`Created environment ${path.text} (${created.mode}, ${created.id})`);
    });

  env
    .command("delete")
    .description("Delete an environment: a DELETE deployment removes what runs, then the environment")
    .argument("<project/env>")
    .option("--watch", "follow the deletion until it ends")
    .option("--json", "print the API object")
    .action(async (pathText: string, options: { watch?: boolean; json?: boolean }) => {
      const api = await ctx.api();
      const { environmentId } = await resolveEnvironment(api, pathText);
      const deployment = await api.delete<Deployment>(`/environments/${environmentId}`);
      ctx.exitCode = await reportDeployment(ctx, { deployment, merged: false }, pathText, options);
    });
}
