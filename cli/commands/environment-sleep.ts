import type { Command } from "commander";
import type { Environment } from "../api-types";
import type { Context } from "../context";
import { resolveEnvironment } from "../paths";
import { parseSleepAfter } from "./service-options";

/**
 * `slipway env sleep p/e [--after <minutes|never>]`: the default of sleep when idle (issue 16)
 * for the environment's applications and containers that set none (`slipway service update --sleep-after`),
 * shown or changed through `PATCH /environments/{id}`.
 */
export function registerEnvironmentSleep(env: Command, ctx: Context): void {
  env
    .command("sleep")
    .description("The environment's default for sleep when idle: without options, print it; --after changes it")
    .argument("<project/env>")
    .option(
      "--after <minutes|never>",
      "its applications and containers that set none sleep after this many minutes without a request; never: they do not",
      parseSleepAfter,
    )
    .option("--json", "print the API object")
    .action(async (pathText: string, options: { after?: number; json?: boolean }) => {
      const api = await ctx.api();
      const { environmentId } = await resolveEnvironment(api, pathText);
      const environment =
        options.after === undefined
          ? await api.get<Environment>(`/environments/${environmentId}`)
          : await api.patch<Environment>(`/environments/${environmentId}`, { sleepAfterMinutes: options.after === 0 ? null : options.after });
      if (options.json) return ctx.printJson({ sleepAfterMinutes: environment.sleepAfterMinutes });
      ctx.print(
        environment.sleepAfterMinutes === null
          ? `${pathText}: its applications and containers never sleep unless they say so (slipway service update --sleep-after)`
          : `${pathText}: its applications and containers sleep after ${environment.sleepAfterMinutes} min without a request unless they say otherwise`,
      );
    });
}
