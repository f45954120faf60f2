import type { Command } from "commander";
import type { AuditEvent } from "../api-types";
import type { ApiClient } from "../client";
import type { Context } from "../context";
import { usageError } from "../errors";
import { formatAge, table } from "../format";
import { parseSince } from "./logs";

type AuditOptions = { since?: string; action?: string; limit?: string; json?: boolean };

/** The API's largest page (server/audit/list-audit.ts): a longer --limit is read page by page. */
const API_PAGE = 500;
const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 10_000;

/** `deployment.deploy`, `api_token.create`: what the audit log records as actions (dot-separated snake_case). */
const ACTION = /^[a-z_]+(\.[a-z_]+)+$/;

function parseLimit(text: string | undefined): number {
  if (text === undefined) return DEFAULT_LIMIT;
  const limit = Number(text);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw usageError(`--limit "${text}": expected a number of events from 1 to ${MAX_LIMIT}`);
  return limit;
}

function parseAction(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  if (!ACTION.test(text)) throw usageError(`--action "${text}": expected an action as the audit log names them, like deployment.deploy or service.update`);
  return text;
}

/**
 * The newest `limit` events matching the filters, newest first, paging backwards by id; `more`
 * says whether older ones match too, so the output can say it is cut.
 */
async function readAudit(api: ApiClient, filters: { action?: string; from?: string }, limit: number): Promise<{ events: AuditEvent[]; more: boolean }> {
  const events: AuditEvent[] = [];
  let before: number | undefined;
  for (;;) {
    // One more than wanted tells whether the list is cut, without another request.
    const wanted = Math.min(API_PAGE, limit + 1 - events.length);
    const page = await api.get<AuditEvent[]>("/audit", { ...filters, before, limit: wanted });
    events.push(...page);
    if (page.length < wanted) return { events, more: false };
    if (events.length > limit) return { events: events.slice(0, limit), more: true };
    before = page.at(-1)!.id;
  }
}

/** "html in demo/dev (deployment 1a2b3c4d)": the target by name, and the deployment an environment's action created. */
function describeTarget(event: AuditEvent): string | null {
  const target = event.target?.label ?? null;
  if (!event.deployment) return target;
  return target ? `${target} (${event.deployment.label})` : event.deployment.label;
}

/** `slipway audit`: the organization's audit log (ADMIN), as the dashboard's Audit log page shows it. */
export function registerAuditCommand(program: Command, ctx: Context): void {
  program
    .command("audit")
    .description("The organization's audit log, newest first: who changed what, from where (ADMIN; secrets redacted)")
    .option("--since <time>", "only events from this long ago (10m, 2h, 7d) or since an ISO time")
    .option("--action <action>", "only this action, e.g. deployment.deploy, service.update, variable.create")
    .option("--limit <n>", `at most this many events, the newest (default ${DEFAULT_LIMIT})`)
    .option("--json", "print the API objects (with their changes)")
    .action(async (options: AuditOptions) => {
      const filters = { action: parseAction(options.action), from: options.since === undefined ? undefined : parseSince(options.since) };
      const limit = parseLimit(options.limit);
      const { events, more } = await readAudit(await ctx.api(), filters, limit);
      if (options.json) return ctx.printJson(events);
      if (events.length === 0) return ctx.print(filters.action || filters.from ? "No event matches these filters." : "Nothing recorded yet.");
      ctx.print(
        table(events, [
          { header: "WHEN", value: (e) => formatAge(e.at) },
          { header: "ACTOR", value: (e) => e.actor },
          { header: "ACTION", value: (e) => e.action },
          { header: "TARGET", value: describeTarget },
          { header: "ORIGIN", value: (e) => e.origin },
        ]),
      );
      // On stderr: stdout stays the table alone.
      if (more) ctx.note(`Showing the newest ${limit} events; older ones match too (--limit, --since).`);
    });
}
