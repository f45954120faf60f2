import type { Command } from "commander";
import type { BuildPlan } from "../api-types";
import type { Context } from "../context";
import { CliError } from "../errors";
import { keyValues, shortCommit } from "../format";
import { resolveService } from "../paths";

/**
 * `slipway service plan p/e/s`: how a deployment would build and start the service now, read from
 * its branch's last commit before deploying (issue 14): what was detected, why, and its steps.
 */
export function registerServicePlanCommand(service: Command, ctx: Context): void {
  service
    .command("plan")
    .description("Show how a deployment would build and start the service now: what is detected in its branch, and why")
    .argument("<project/env/service>")
    .option("--json", "print the API object")
    .action(async (pathText: string, options: { json?: boolean }) => {
      const api = await ctx.api();
      const { serviceId } = await resolveService(api, pathText);
      const plan = await api.get<BuildPlan>(`/services/${serviceId}/plan`);
      if (options.json) return ctx.printJson(plan);
      if (plan.status === "unreadable") throw new CliError(`could not read the plan of ${pathText}: ${plan.error ?? "unknown reason"}`);
      if (plan.status === "undetected") throw new CliError(`${pathText} at ${shortCommit(plan.commit ?? "")}: ${plan.error ?? "nothing detected"}`);
      ctx.print(formatPlan(plan));
    });
}

function formatPlan(plan: BuildPlan): string {
  const steps = plan.steps.map((step, index): [string, string] => [
    index === 0 ? "steps" : "",
    `${step.command}${step.directory === "." ? "" : ` (in ${step.directory}: the repository root)`}`,
  ]);
  const start =
    plan.start.type === "static"
      ? `serve ${plan.start.directory === "." ? "the app's files" : `${plan.start.directory}/`} with the static server${plan.start.spa ? ", SPA fallback to index.html" : ", 404 for unknown paths"}`
      : plan.start.type === "command"
        ? plan.start.command
        : "-";
  return keyValues([
    ["detected", plan.framework],
    ["commit", shortCommit(plan.commit ?? "")],
    ...plan.reasons.map((reason, index): [string, string] => [index === 0 ? "because" : "", reason]),
    ...plan.toolchains.map((toolchain): [string, string] => [
      toolchain.name.toLowerCase(),
      toolchain.version === null ? "the engine's default" : `${toolchain.version} (from ${toolchain.source ?? "the repository"})`,
    ]),
    ...(steps.length > 0 ? steps : [["steps", "nothing to build"] as [string, string]]),
    ["start", start],
  ]);
}
