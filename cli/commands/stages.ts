import { InvalidArgumentError, type Command } from "commander";
import type { ChangedStage, RemovedStage, ServiceStage, Stage } from "../api-types";
import type { ApiClient } from "../client";
import type { Context } from "../context";
import { CliError, exitCodes } from "../errors";
import { table } from "../format";
import { resolveEnvironment, resolveService } from "../paths";

/**
 * Deployment stages (issue 16): `slipway env stages p/e` shows them, `slipway stage add|move|remove`
 * changes them, `slipway stage assign p/e/service <stage>` puts a service in one. Services in no
 * stage are in `default`, which deploys first.
 */

/** `--position 2`: a stage's place among the environment's stages, from 1. */
function position(text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new InvalidArgumentError(`"${text}" is not a position: expected 1, 2, 3, … (1 deploys first after default)`);
  return value;
}

async function stagesOf(api: ApiClient, environmentId: string): Promise<Stage[]> {
  return api.get<Stage[]>(`/environments/${environmentId}/stages`);
}

/** The id of a stage of the environment by its name; `default` has none and cannot be changed. */
async function stageId(api: ApiClient, environmentId: string, pathText: string, name: string): Promise<string> {
  const stages = await stagesOf(api, environmentId);
  const stage = stages.find((candidate) => candidate.name === name);
  if (!stage) throw new CliError(`${pathText} has no stage "${name}" (its stages: ${stages.map((s) => s.name).join(", ")})`, exitCodes.notFound);
  if (stage.id === null)
    throw new CliError(`"${name}" is where services placed in no stage are: it always deploys first and cannot be moved or removed`, exitCodes.usage);
  return stage.id;
}

export function describeStages(stages: Stage[]): string {
  return table(stages, [
    { header: "#", value: (stage) => String(stage.position) },
    { header: "STAGE", value: (stage) => stage.name },
    { header: "SERVICES", value: (stage) => (stage.services.length === 0 ? "-" : stage.services.map((service) => service.name).join(", ")) },
  ]);
}

export function registerEnvironmentStages(env: Command, ctx: Context): void {
  env
    .command("stages")
    .description("The environment's deployment stages in the order deployments run them, each with its services")
    .argument("<project/env>")
    .option("--json", "print the API objects")
    .action(async (pathText: string, options: { json?: boolean }) => {
      const api = await ctx.api();
      const { environmentId } = await resolveEnvironment(api, pathText);
      const stages = await stagesOf(api, environmentId);
      if (options.json) return ctx.printJson(stages);
      ctx.print(describeStages(stages));
    });
}

export function registerStageCommands(program: Command, ctx: Context): void {
  const stage = program
    .command("stage")
    .description("Deployment stages: a stage deploys once the one before it is done (show them: slipway env stages <project/env>)");

  stage
    .command("add")
    .description("Add a stage to an environment, last unless --position says")
    .argument("<project/env>")
    .argument("<name>")
    .option("--position <n>", "its place among the stages, from 1", position)
    .option("--json", "print the API object")
    .action(async (pathText: string, name: string, options: { position?: number; json?: boolean }) => {
      const api = await ctx.api();
      const { environmentId } = await resolveEnvironment(api, pathText);
      const added = await api.post<ChangedStage>(`/environments/${environmentId}/stages`, { name, position: options.position });
      if (options.json) return ctx.printJson(added);
      ctx.print(`Added stage ${name} to ${pathText} at position ${added.position} (put services in it: slipway stage assign ${pathText}/<service> ${name})`);
    });

  stage
    .command("move")
    .description("Move a stage to another position")
    .argument("<project/env>")
    .argument("<name>")
    .requiredOption("--position <n>", "its new place among the stages, from 1", position)
    .option("--json", "print the API object")
    .action(async (pathText: string, name: string, options: { position: number; json?: boolean }) => {
      const api = await ctx.api();
      const { environmentId } = await resolveEnvironment(api, pathText);
      const moved = await api.patch<ChangedStage>(`/stages/${await stageId(api, environmentId, pathText, name)}`, { position: options.position });
      if (options.json) return ctx.printJson(moved);
      ctx.print(`Moved stage ${name} of ${pathText} to position ${moved.position}`);
    });

  stage
    .command("remove")
    .description("Remove a stage: its services go back to the default stage")
    .argument("<project/env>")
    .argument("<name>")
    .option("--json", "print the API object")
    .action(async (pathText: string, name: string, options: { json?: boolean }) => {
      const api = await ctx.api();
      const { environmentId } = await resolveEnvironment(api, pathText);
      const removed = await api.delete<RemovedStage>(`/stages/${await stageId(api, environmentId, pathText, name)}`);
      if (options.json) return ctx.printJson(removed);
      const moved = removed.services.length > 0 ? `; ${removed.services.join(", ")} moved to the default stage` : "";
      ctx.print(`Removed stage ${name} of ${pathText}${moved}`);
    });

  stage
    .command("assign")
    .description("Put a service in a stage of its environment (default: in none, deployed first)")
    .argument("<project/env/service>")
    .argument("<stage>")
    .option("--json", "print the API object")
    .action(async (pathText: string, stageName: string, options: { json?: boolean }) => {
      const api = await ctx.api();
      const { serviceId } = await resolveService(api, pathText);
      const assigned = await api.put<ServiceStage>(`/services/${serviceId}/stage`, { stage: stageName });
      if (options.json) return ctx.printJson(assigned);
      ctx.print(`${pathText} is in stage ${assigned.stage}: the next deployment applies it`);
    });
}
