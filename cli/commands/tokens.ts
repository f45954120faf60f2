import { Option, type Command } from "commander";
import type { ApiToken, CreatedApiToken } from "../api-types";
import type { Context } from "../context";
import { formatAge, table } from "../format";

const roles = ["OWNER", "ADMIN", "DEVELOPER", "VIEWER"] as const;

export function registerTokenCommands(program: Command, ctx: Context): void {
  const token = program.command("token").description("API tokens for the CLI and scripts: create, list, revoke");

  token
    .command("create")
    .description("Create an API token; it is shown once")
    .argument("<name>", "what it is for, e.g. ci")
    .addOption(new Option("--role <role>", "what it may do").choices(roles).makeOptionMandatory())
    .option("--json", "print the API object (with the token)")
    .action(async (name: string, options: { role: string; json?: boolean }) => {
      const created = await (await ctx.api()).post<CreatedApiToken>("/tokens", { name, role: options.role });
      if (options.json) return ctx.printJson(created);
      ctx.print([`Created token ${created.apiToken.name} (${created.apiToken.role}, ${created.apiToken.id}), shown only this once:`, created.token].join("\n"));
    });

  token
    .command("list")
    .description("List API tokens (never their values)")
    .option("--json", "print the API objects")
    .action(async (options: { json?: boolean }) => {
      const tokens = await (await ctx.api()).get<ApiToken[]>("/tokens");
      if (options.json) return ctx.printJson(tokens);
      ctx.print(
        table(tokens, [
          { header: "ID", value: (t) => t.id },
          { header: "NAME", value: (t) => t.name },
          { header: "ROLE", value: (t) => t.role },
          { header: "PREFIX", value: (t) => t.prefix },
          { header: "LAST USED", value: (t) => formatAge(t.lastUsedAt) },
          { header: "CREATED", value: (t) => formatAge(t.createdAt) },
          { header: "REVOKED", value: (t) => (t.revokedAt ? formatAge(t.revokedAt) : null) },
        ]),
      );
    });

  token
    .command("revoke")
    .description("Revoke an API token; it stops working at once")
    .argument("<id>")
    .option("--json", "print the API object")
    .action(async (id: string, options: { json?: boolean }) => {
      const revoked = await (await ctx.api()).delete<ApiToken>(`/tokens/${id}`);
      if (options.json) return ctx.printJson(revoked);
      ctx.print(`Revoked token ${revoked.name} (${revoked.id})`);
    });
}
