import type { Command } from "commander";
import open from "open";
import type { Overview } from "../api-types";
import type { Context } from "../context";
import { CliError, exitCodes } from "../errors";
import { parsePath } from "../paths";

/**
 * `slipway open p[/e[/s]]`: a service's address, or the dashboard's page of a project, an
 * environment (or a service, with --dashboard). Printed always, so it can be copied where no
 * browser opens (an ssh session), and opened unless --print.
 */
export function registerOpenCommand(program: Command, ctx: Context): void {
  program
    .command("open")
    .description("Open a service's URL in the browser, or the dashboard's page of a project or an environment; the URL is printed too")
    .argument("<project[/env[/service]]>")
    .option("--dashboard", "with a service path: its dashboard page instead of its URL")
    .option("--print", "only print the URL")
    .action(async (pathText: string, options: { dashboard?: boolean; print?: boolean }) => {
      const path = parsePath(pathText, { min: 1, max: 3 });
      const api = await ctx.api();
      const resolved = await api.resolve(path.text);
      let url: string;
      if (resolved.serviceId && !options.dashboard) {
        // The overview's services carry the address a browser reaches them at (server/overview/overview.ts).
        const overview = await api.get<Overview>("/overview");
        const service = overview.projects
          .flatMap((project) => project.environments.flatMap((environment) => environment.services))
          .find((candidate) => candidate.id === resolved.serviceId);
        const servesHttp = service?.kind === "APPLICATION" || service?.kind === "CONTAINER";
        if (!servesHttp)
          throw new CliError(`${pathText} is a ${service?.kind ?? "service"} and has no URL: slipway open ${pathText} --dashboard opens its page`);
        if (!service.url)
          throw new CliError(
            `${pathText} has no URL yet: it has not been deployed (slipway deploy ${pathText}); --dashboard opens its page`,
            exitCodes.failure,
          );
        url = service.url;
      } else {
        const page = resolved.serviceId
          ? `services/${resolved.serviceId}`
          : resolved.environmentId
            ? `environments/${resolved.environmentId}`
            : `projects/${resolved.projectId}`;
        url = new URL(page, `${api.url.replace(/\/+$/, "")}/`).href;
      }
      ctx.print(url);
      if (options.print) return;
      try {
        await (ctx.io.openUrl ?? openInBrowser)(url);
      } catch (error) {
        // The URL is printed above: the user can still copy it.
        ctx.note(`could not open a browser (${(error as Error).message}): open the URL above`);
      }
    });
}

/** open resolves once the launcher (xdg-open, open) has started, and rejects when it cannot start. */
async function openInBrowser(url: string): Promise<void> {
  await open(url);
}
