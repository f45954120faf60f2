import { Argument, InvalidArgumentError, type Command } from "commander";
import type { NotificationDelivery, NotificationEvent, NotificationRule, NotificationRuleWithSecret } from "../api-types";
import type { ApiClient } from "../client";
import type { Context } from "../context";
import { CliError, exitCodes, usageError } from "../errors";
import { firstLine, formatAge, table } from "../format";
import { parsePath } from "../paths";
import { oneOf, readSecretFromStdin } from "../secret-input";

const channels = ["slack", "discord", "email", "webhook"] as const;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type AddOptions = {
  on: string[];
  name?: string;
  url?: string;
  urlStdin?: boolean;
  to?: string[];
  from?: string;
  smtpHost?: string;
  smtpPort?: number;
  smtpSecure?: boolean;
  smtpUser?: string;
  smtpPasswordStdin?: boolean;
  disabled?: boolean;
  json?: boolean;
};

const list = (value: string, previous: string[] = []) => [
  ...previous,
  ...value
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean),
];

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError("expected a port number");
  return n;
}

/** A rule by its id, or by its name when exactly one rule has it. */
async function findRule(api: ApiClient, nameOrId: string): Promise<NotificationRule> {
  const rules = await api.get<NotificationRule[]>("/notifications/rules");
  if (UUID.test(nameOrId)) {
    const byId = rules.find((rule) => rule.id === nameOrId);
    if (byId) return byId;
  }
  const named = rules.filter((rule) => rule.name === nameOrId);
  if (named.length > 1) throw usageError(`${named.length} rules are named "${nameOrId}": give the id (slipway notify list)`);
  if (!named[0]) throw new CliError(`Notification rule "${nameOrId}" not found`, exitCodes.notFound);
  return named[0];
}

/** The channel's settings from the options; a URL (its path is a credential for Slack and Discord) read from stdin when asked. */
async function channelOf(ctx: Context, channel: string, options: AddOptions) {
  if (channel === "email") {
    if (options.url || options.urlStdin) throw usageError("an email channel takes --to, --from and --smtp-*, not --url");
    if (!options.to?.length || !options.from || !options.smtpHost || !options.smtpPort)
      throw usageError("an email channel needs --to, --from, --smtp-host and --smtp-port");
    const password = options.smtpPasswordStdin ? await readSecretFromStdin(ctx, "the SMTP password") : undefined;
    return {
      type: "email",
      to: options.to,
      from: options.from,
      smtp: { host: options.smtpHost, port: options.smtpPort, secure: options.smtpSecure ?? false, user: options.smtpUser, password },
    };
  }
  oneOf({ "--url": options.url, "--url-stdin": options.urlStdin });
  const url = options.urlStdin ? (await readSecretFromStdin(ctx, `the ${channel} URL`)).trim() : options.url;
  if (!url) throw usageError(`a ${channel} channel needs --url or --url-stdin`);
  return { type: channel, url };
}

export function registerNotifyCommands(program: Command, ctx: Context): void {
  const notify = program.command("notify").description("Notification rules: add, list, remove, test, deliveries");

  notify
    .command("add")
    .description("Send a project's (or one environment's) events to Slack, Discord, email or a signed webhook")
    .argument("<path>", "<project> or <project>/<env>")
    .addArgument(new Argument("<channel>", "slack, discord, email or webhook").choices(channels))
    .requiredOption("--on <events>", "events, comma-separated: deployment.started, deployment.succeeded, deployment.failed, preview.created, …", list)
    .option("--name <name>", "a name for the rule (default: the channel)")
    .option("--url <url>", "the incoming webhook's URL; visible to other users in ps: prefer --url-stdin for Slack and Discord")
    .option("--url-stdin", "read the URL from standard input")
    .option("--to <addresses>", "email: recipients, comma-separated", list)
    .option("--from <address>", "email: the sender")
    .option("--smtp-host <host>", "email: the SMTP server")
    .option("--smtp-port <port>", "email: its port (587, 465 with --smtp-secure, 25)", port)
    .option("--smtp-secure", "email: TLS from the first byte (port 465); STARTTLS is used when offered otherwise")
    .option("--smtp-user <user>", "email: the SMTP user")
    .option("--smtp-password-stdin", "email: read the SMTP password from standard input")
    .option("--disabled", "create the rule disabled (slipway notify test still sends)")
    .option("--json", "print the API object (with a webhook's secret)")
    .action(async (pathText: string, channel: string, options: AddOptions) => {
      const path = parsePath(pathText, { min: 1, max: 2 });
      const api = await ctx.api();
      const resolved = await api.resolve(path.text);
      const result = await api.post<NotificationRuleWithSecret>("/notifications/rules", {
        projectId: resolved.projectId,
        environmentId: path.environment ? resolved.environmentId : undefined,
        name: options.name ?? channel,
        events: options.on as NotificationEvent[],
        channel: await channelOf(ctx, channel, options),
        enabled: !options.disabled,
      });
      if (options.json) return ctx.printJson(result);
      const { rule, secret } = result;
      const lines = [`Added ${rule.channel} rule ${rule.name} (${rule.id}) on ${rule.events.join(", ")} of ${path.text} to ${rule.target}`];
      if (secret)
        lines.push(
          "Signing secret (shown only this once):",
          secret,
          "Receivers check the Slipway-Signature header with it (see the README's Notifications section).",
        );
      ctx.print(lines.join("\n"));
    });

  notify
    .command("list")
    .description("List notification rules")
    .argument("[project]", "only this project's")
    .option("--json", "print the API objects")
    .action(async (project: string | undefined, options: { json?: boolean }) => {
      const api = await ctx.api();
      const projectId = project ? (await api.resolve(parsePath(project, { min: 1, max: 1 }).text)).projectId : undefined;
      const rules = await api.get<NotificationRule[]>("/notifications/rules", { projectId });
      if (options.json) return ctx.printJson(rules);
      if (rules.length === 0) return ctx.print("No notification rules yet: slipway notify add <project>[/<env>] <channel> --on <events>");
      ctx.print(
        table(rules, [
          { header: "NAME", value: (r) => r.name },
          { header: "CHANNEL", value: (r) => r.channel },
          { header: "TARGET", value: (r) => r.target },
          { header: "EVENTS", value: (r) => r.events.join(",") },
          { header: "ENABLED", value: (r) => (r.enabled ? "yes" : "no") },
          { header: "ID", value: (r) => r.id },
        ]),
      );
    });

  notify
    .command("remove")
    .description("Remove a rule and its delivery log")
    .argument("<rule>", "its name or id")
    .option("--json", "print the API object")
    .action(async (nameOrId: string, options: { json?: boolean }) => {
      const api = await ctx.api();
      const rule = await findRule(api, nameOrId);
      const removed = await api.delete<NotificationRule>(`/notifications/rules/${rule.id}`);
      if (options.json) return ctx.printJson(removed);
      ctx.print(`Removed ${removed.channel} rule ${removed.name} (${removed.id})`);
    });

  notify
    .command("test")
    .description("Send a test delivery to a rule's channel; see it with slipway notify deliveries")
    .argument("<rule>", "its name or id")
    .option("--json", "print the API object")
    .action(async (nameOrId: string, options: { json?: boolean }) => {
      const api = await ctx.api();
      const rule = await findRule(api, nameOrId);
      const result = await api.post<{ deliveryId: string }>(`/notifications/rules/${rule.id}/test`);
      if (options.json) return ctx.printJson(result);
      ctx.print(`Queued test delivery ${result.deliveryId} to ${rule.name}: slipway notify deliveries ${rule.id}`);
    });

  notify
    .command("deliveries")
    .description("A rule's deliveries, newest first, with the receiver's answer to each attempt")
    .argument("<rule>", "its name or id")
    .option("--json", "print the API objects")
    .action(async (nameOrId: string, options: { json?: boolean }) => {
      const api = await ctx.api();
      const rule = await findRule(api, nameOrId);
      const deliveries = await api.get<NotificationDelivery[]>(`/notifications/rules/${rule.id}/deliveries`);
      if (options.json) return ctx.printJson(deliveries);
      if (deliveries.length === 0) return ctx.print(`No deliveries to ${rule.name} yet`);
      const last = (d: NotificationDelivery) => d.attempts.at(-1);
      ctx.print(
        table(deliveries, [
          { header: "EVENT", value: (d) => d.event },
          { header: "STATUS", value: (d) => d.status },
          { header: "ATTEMPTS", value: (d) => d.attempts.length },
          {
            header: "LAST ANSWER",
            value: (d) => (last(d) ? (last(d)!.error ?? `${last(d)!.responseStatus ?? "ok"} ${firstLine(last(d)!.responseExcerpt)}`.trim()) : ""),
          },
          { header: "CREATED", value: (d) => formatAge(d.createdAt) },
          { header: "ID", value: (d) => d.id },
        ]),
      );
    });
}
