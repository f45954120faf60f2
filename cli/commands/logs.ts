import { Option, type Command } from "commander";
import { terminalStatuses } from "../../engine/protocol/events";
import { logLevels, type LogLevel } from "../../engine/protocol/log-level";
import type { Deployment, LogLine } from "../api-types";
import type { ApiClient, Query } from "../client";
import type { Context } from "../context";
import { CliError, exitCodes, usageError } from "../errors";
import { durationSeconds } from "../format";
import { resolveService } from "../paths";
import { followThroughOutages } from "../reconnect";

type LogsOptions = {
  follow?: boolean;
  deployment?: string;
  build?: boolean;
  since?: string;
  until?: string;
  grep?: string;
  stderr?: boolean;
  stdout?: boolean;
  release?: string;
  level?: LogLevel;
  tail?: string;
  timestamps?: boolean;
  json?: boolean;
};

/** Runtime logs start with their last lines, as `heroku logs` does; `--tail all` prints everything kept. */
const DEFAULT_TAIL = 100;

const PAGE = 1000;
/** `--since 10m` (s, m, h, d) or an ISO timestamp, as the API's ISO `since`. */
export function parseSince(text: string, now: Date = new Date()): string {
  const seconds = durationSeconds(text);
  if (seconds !== null) return new Date(now.getTime() - seconds * 1000).toISOString();
  const absolute = new Date(text);
  if (Number.isNaN(absolute.getTime())) throw usageError(`--since "${text}": expected a duration like 10m, 2h, 1d or an ISO time`);
  return absolute.toISOString();
}

/** The deployment whose build output `--build` shows: the newest DEPLOY that included the service. */
async function latestBuild(ctx: Context, api: ApiClient, environmentId: string, serviceId: string, pathText: string): Promise<Deployment> {
  const history = await api.get<Deployment[]>(`/environments/${environmentId}/deployments`, { limit: 200 });
  const deploys = history.filter((d) => d.action === "DEPLOY");
  const found = deploys.find((d) => d.serviceIds === null || d.serviceIds.includes(serviceId));
  if (!found) throw new CliError(`No deployment of ${pathText} yet`, exitCodes.notFound);
  // Said, not silently skipped: the newest deployment is another service's, and these lines are older.
  if (deploys[0] !== found) ctx.note(`The latest deployment (${deploys[0]!.id}) did not include ${pathText}; showing ${found.id}, the latest that did`);
  return found;
}

function parseTail(text: string | undefined, fallback: number | undefined): number | undefined {
  if (text === undefined) return fallback;
  if (text === "all") return undefined;
  const lines = Number(text);
  if (!Number.isInteger(lines) || lines < 1 || lines > 5000) throw usageError(`--tail "${text}": expected a number of lines from 1 to 5000, or "all"`);
  return lines;
}

export function registerLogCommands(program: Command, ctx: Context): void {
  program
    .command("logs")
    .description("A service's runtime logs, or the build and deploy logs of one of its deployments")
    .argument("<project/env/service>")
    .option("-f, --follow", "keep printing new lines until interrupted (a deployment's logs: until it ends)")
    .option("--deployment <id>", "the build and deploy logs of this deployment")
    .option("--build", "the build and deploy logs of the service's latest deployment")
    .option("--since <time>", "only lines from this long ago (10m, 2h, 1d) or since an ISO time")
    .option("--until <time>", "only lines from before this long ago (10m, 2h, 1d) or before an ISO time; with --since, a time range")
    .option("--grep <text>", "only lines containing this text (case-insensitive)")
    .option("--stderr", "only what the app wrote to its standard error")
    .option("--stdout", "only what the app wrote to its standard output")
    .option("--release <id>", "only the runtime output of this release")
    .addOption(new Option("--level <level>", "only JSON log lines at this level or a more severe one (plain text has no level)").choices(logLevels))
    .option("-n, --tail <lines>", `start with the last N lines, or "all" (runtime logs default to ${DEFAULT_TAIL} without --since)`)
    .option("-t, --timestamps", "prefix each line with its time")
    .option("--json", "print one JSON object per line")
    .action(async (pathText: string, options: LogsOptions) => {
      if (options.deployment && options.build) throw usageError("give --deployment <id> or --build, not both");
      if (options.stderr && options.stdout) throw usageError("give --stderr or --stdout, not both");
      const since = options.since ? parseSince(options.since) : undefined;
      const until = options.until ? parseSince(options.until) : undefined;
      const api = await ctx.api();
      const { environmentId, serviceId } = await resolveService(api, pathText);
      const deploymentId = options.build ? (await latestBuild(ctx, api, environmentId, serviceId, pathText)).id : options.deployment;
      const stream: Query = deploymentId ? { deploymentId, serviceId } : { serviceId };
      const tail = parseTail(options.tail, deploymentId || options.since ? undefined : DEFAULT_TAIL);
      const fd = options.stderr ? "stderr" : options.stdout ? "stdout" : undefined;
      const filters: Query = { ...stream, grep: options.grep, since, until, fd, releaseId: options.release, level: options.level };

      const print = (line: LogLine) => {
        if (options.json) ctx.printJsonLine(line);
        else ctx.print(options.timestamps ? `${line.at} ${line.text}` : line.text);
      };

      // Resuming "after the last seq printed" is what makes polling lossless and repeat-free,
      // across polls and across a lost control plane alike.
      let last = 0;
      const show = (lines: LogLine[]) => {
        for (const line of lines) print(line);
        last = lines.at(-1)?.seq ?? last;
      };
      /** Prints every line after the last one printed, page by page; a page printed stays printed. */
      const drain = async () => {
        for (;;) {
          const page = await api.get<LogLine[]>("/logs", { ...filters, after: last, limit: PAGE });
          show(page);
          if (page.length < PAGE) return;
        }
      };

      if (tail) show(await api.get<LogLine[]>("/logs", { ...filters, tail }));
      else await drain();
      if (!options.follow) return;
      const step = followThroughOutages(ctx);
      let finishing = false;
      try {
        while (await ctx.pause()) {
          const ended = await step(async () => {
            // A deployment's logs end with it; the status is read first, and one more poll after
            // the end picks up lines the engine shipped just after its last event.
            const status = deploymentId ? (await api.get<Deployment>(`/deployments/${deploymentId}`)).status : null;
            await drain();
            return status !== null && terminalStatuses.has(status);
          });
          if (finishing) return;
          finishing = ended;
        }
      } catch (error) {
        // Ctrl-C is how a follow ends: a request it cut short is not a failure.
        if (!ctx.aborted) throw error;
      }
    });
}
