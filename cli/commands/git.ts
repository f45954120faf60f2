import { Argument, InvalidArgumentError, type Command } from "commander";
import type { GitConnection, GitConnectionWithSecret, GitDelivery, GitProvider } from "../api-types";
import type { ApiClient } from "../client";
import type { Context } from "../context";
import { CliError, exitCodes } from "../errors";
import { formatAge, table } from "../format";
import { oneOf, readSecretFromStdin } from "../secret-input";

const providers = ["github", "gitlab", "bitbucket", "generic"] as const satisfies readonly GitProvider[];

/** What to set in the provider's webhook form: where the secret goes. */
export const signatureHeaders: Record<GitProvider, string> = {
  github: "X-Hub-Signature-256 (secret field of the webhook, content type application/json)",
  gitlab: "X-Gitlab-Token (secret token field of the webhook)",
  bitbucket: "X-Hub-Signature (secret field of the webhook)",
  generic: "X-Slipway-Signature: sha256=<HMAC-SHA256 hex of the body>",
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A connection by its name (or id). */
async function findConnection(api: ApiClient, nameOrId: string): Promise<GitConnection> {
  const connections = await api.get<GitConnection[]>("/git/connections");
  const found = connections.find((c) => c.name === nameOrId) ?? (UUID.test(nameOrId) ? connections.find((c) => c.id === nameOrId) : undefined);
  if (!found) throw new CliError(`Git connection "${nameOrId}" not found`, exitCodes.notFound);
  return found;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("expected a positive integer");
  return n;
}

function printSecret(ctx: Context, result: GitConnectionWithSecret, verb: string): void {
  ctx.print(
    [
      `${verb} ${result.connection.provider} connection ${result.connection.name} (${result.connection.id}).`,
      `Webhook URL:  ${result.connection.webhookUrl}`,
      `Secret (shown only this once):`,
      result.secret,
      `The provider sends it as ${signatureHeaders[result.connection.provider]}.`,
    ].join("\n"),
  );
}

export function registerGitCommands(program: Command, ctx: Context): void {
  const git = program.command("git").description("Git providers: connect, list, rotate, disconnect, deliveries, redeliver");

  git
    .command("connect")
    .description("Connect a git provider; prints its webhook URL and secret (shown once)")
    .addArgument(new Argument("<provider>", "github, gitlab, bitbucket or generic").choices(providers))
    .argument("<name>", "a name for the connection, e.g. github")
    .option("--api-url <url>", "the provider's REST API (GitHub Enterprise, self-managed GitLab)")
    .option("--api-token <token>", "lets Slipway post commit statuses and pull request comments; visible to other users in ps: prefer --api-token-stdin")
    .option("--api-token-stdin", "read the provider's API token from standard input")
    .option("--json", "print the API object (with the secret)")
    .action(async (provider: string, name: string, options: { apiUrl?: string; apiToken?: string; apiTokenStdin?: boolean; json?: boolean }) => {
      oneOf({ "--api-token": options.apiToken, "--api-token-stdin": options.apiTokenStdin });
      const apiToken = options.apiTokenStdin ? (await readSecretFromStdin(ctx, "the provider's API token")).trim() : options.apiToken;
      const result = await (
        await ctx.api()
      ).post<GitConnectionWithSecret>("/git/connections", {
        provider,
        name,
        apiBaseUrl: options.apiUrl,
        apiToken,
      });
      if (options.json) return ctx.printJson(result);
      printSecret(ctx, result, "Connected");
    });

  git
    .command("list")
    .description("List git provider connections")
    .option("--json", "print the API objects")
    .action(async (options: { json?: boolean }) => {
      const connections = await (await ctx.api()).get<GitConnection[]>("/git/connections");
      if (options.json) return ctx.printJson(connections);
      if (connections.length === 0) return ctx.print("No git provider connected yet: slipway git connect <provider> <name>");
      ctx.print(
        table(connections, [
          { header: "NAME", value: (c) => c.name },
          { header: "PROVIDER", value: (c) => c.provider },
          { header: "WEBHOOK URL", value: (c) => c.webhookUrl },
          { header: "API TOKEN", value: (c) => (c.hasApiToken ? "yes" : "no") },
          { header: "REFUSED", value: (c) => c.rejectedDeliveries },
          { header: "CREATED", value: (c) => formatAge(c.createdAt) },
          { header: "ID", value: (c) => c.id },
        ]),
      );
    });

  git
    .command("rotate")
    .description("Issue a new webhook secret (shown once); the old one stops working")
    .argument("<name>")
    .option("--json", "print the API object (with the secret)")
    .action(async (name: string, options: { json?: boolean }) => {
      const api = await ctx.api();
      const connection = await findConnection(api, name);
      const result = await api.post<GitConnectionWithSecret>(`/git/connections/${connection.id}/secret`);
      if (options.json) return ctx.printJson(result);
      printSecret(ctx, result, "New secret for");
    });

  git
    .command("disconnect")
    .description("Disconnect a git provider: its webhook stops being accepted")
    .argument("<name>")
    .option("--json", "print the API object")
    .action(async (name: string, options: { json?: boolean }) => {
      const api = await ctx.api();
      const connection = await findConnection(api, name);
      const deleted = await api.delete<GitConnection>(`/git/connections/${connection.id}`);
      if (options.json) return ctx.printJson(deleted);
      ctx.print(`Disconnected ${deleted.provider} connection ${deleted.name} (${deleted.id})`);
    });

  git
    .command("deliveries")
    .description("A connection's webhook deliveries, newest first")
    .argument("<name>")
    .option("--limit <n>", "how many (1-200)", positiveInt, 20)
    .option("--before <seq>", "page back: deliveries received before this SEQ", positiveInt)
    .option("--json", "print the API objects")
    .action(async (name: string, options: { limit: number; before?: number; json?: boolean }) => {
      const api = await ctx.api();
      const connection = await findConnection(api, name);
      const deliveries = await api.get<GitDelivery[]>(`/git/connections/${connection.id}/deliveries`, { limit: options.limit, before: options.before });
      if (options.json) return ctx.printJson(deliveries);
      if (deliveries.length === 0) return ctx.print(options.before ? `No deliveries to ${name} before ${options.before}` : `No deliveries to ${name} yet`);
      ctx.print(
        table(deliveries, [
          { header: "SEQ", value: (d) => d.seq },
          { header: "EVENT", value: (d) => d.event },
          { header: "STATUS", value: (d) => d.status },
          { header: "RECEIVED", value: (d) => formatAge(d.receivedAt) },
          { header: "DELIVERY", value: (d) => d.deliveryId },
          { header: "ID", value: (d) => d.id },
          { header: "OUTCOME", value: (d) => d.summary },
        ]),
      );
      if (deliveries.length === options.limit) ctx.print(`More: slipway git deliveries ${name} --before ${deliveries[deliveries.length - 1]!.seq}`);
    });

  git
    .command("redeliver")
    .description("Process a stored delivery again")
    .argument("<delivery-id>", "the ID column of slipway git deliveries")
    .option("--json", "print the API object")
    .action(async (deliveryId: string, options: { json?: boolean }) => {
      const delivery = await (await ctx.api()).post<GitDelivery>(`/git/deliveries/${deliveryId}/redeliver`);
      if (options.json) return ctx.printJson(delivery);
      ctx.print(`Delivery ${delivery.deliveryId} (${delivery.event}) queued again: ${delivery.status}`);
    });
}
