import type { Command } from "commander";
import type { CreatedOrganization, DeletedOrganization, MyOrganization, RenamedOrganization, TransferredOrganization, WhoAmI } from "../api-types";
import { readSavedConfig, saveConfig, type CliConfig, type SavedOrganization } from "../config";
import { typedLine } from "../confirm";
import type { Context } from "../context";
import { CliError, exitCodes, usageError } from "../errors";
import { table } from "../format";

/**
 * Organizations from the CLI. An API token belongs to one organization, so the CLI keeps one
 * token per organization in its config file: `org create` asks the control plane for an OWNER
 * token of the new organization and saves it; `org switch` makes a saved one current. An
 * organization made elsewhere needs a token created there (dashboard, Settings, API tokens)
 * and `slipway login` once; its token is then remembered on the next switch.
 */
export function registerOrganizationCommands(program: Command, ctx: Context): void {
  const org = program.command("org").description("Organizations: list, create, switch, rename, transfer, delete");

  org
    .command("list")
    .description("List your organizations: the current one, and those the CLI holds a token for")
    .option("--json", "print the API objects")
    .action(async (options: { json?: boolean }) => {
      const api = await ctx.api();
      const [mine, me, config] = await Promise.all([api.get<MyOrganization[]>("/organizations"), api.get<WhoAmI>("/whoami"), ctx.config()]);
      if (options.json) return ctx.printJson(mine);
      const saved = new Set((config.organizations ?? []).map((o) => o.id));
      ctx.print(
        table(mine, [
          { header: "NAME", value: (o) => (o.organizationId === me.organizationId ? `${o.name} *` : o.name) },
          { header: "ROLE", value: (o) => o.role },
          { header: "CLI TOKEN", value: (o) => (o.organizationId === me.organizationId || saved.has(o.organizationId) ? "yes" : "no") },
          { header: "ID", value: (o) => o.organizationId },
        ]),
      );
    });

  org
    .command("create")
    .description("Create an organization (you are its OWNER); the CLI switches to it with a new OWNER token")
    .argument("<name>")
    .option("--no-switch", "keep acting in the current organization (the new token is saved for org switch)")
    .option("--json", "print the API object (without the token, which goes to the config file)")
    .action(async (name: string, options: { switch: boolean; json?: boolean }) => {
      const api = await ctx.api();
      const current = await currentOrganization(ctx);
      const { organization, token } = await api.post<CreatedOrganization>("/organizations", { name, issueToken: true });
      if (!token) throw new CliError("the control plane created the organization but gave no token for it");
      const remembered = remember(await savedWithCurrent(ctx, current), { ...organization, token });
      const file = await saveConfig(ctx.io.env, options.switch ? { ...remembered, token } : remembered);
      if (options.json) return ctx.printJson(organization);
      ctx.print(`Created organization ${organization.name} (${organization.id}); you are its OWNER`);
      ctx.print(options.switch ? `The CLI now acts in it (token saved to ${file})` : `Its token is saved to ${file}: slipway org switch ${organization.name}`);
      warnIfTokenOverridden(ctx);
    });

  org
    .command("switch")
    .description("Act in another organization, with the token the CLI holds for it")
    .argument("<organization>", "its name or id")
    .action(async (wanted: string) => {
      // The current token may be dead (its organization deleted, its creator gone): switch away anyway.
      const current = await currentOrganization(ctx).catch((error: unknown) => {
        if (error instanceof CliError && error.exitCode === exitCodes.denied) return null;
        throw error;
      });
      const config = current ? await savedWithCurrent(ctx, current) : await savedConfig(ctx);
      const matches = (config.organizations ?? []).filter((saved) => saved.id === wanted || saved.name === wanted);
      if (matches.length > 1) throw usageError(`several organizations are named ${wanted}: give the id (slipway org list)`);
      const target = matches[0];
      if (!target) {
        throw new CliError(
          `the CLI holds no token for ${wanted}: create one in the dashboard (switch to ${wanted}, Settings, API tokens), then slipway login --url … --token-stdin`,
          exitCodes.notFound,
        );
      }
      // Checked before saving, so a revoked token never replaces a working one.
      const identity = await ctx.clientFor({ url: config.url, token: target.token }).get<WhoAmI>("/whoami");
      await saveConfig(ctx.io.env, { ...config, token: target.token });
      ctx.print(`Switched to organization ${target.name} as ${identity.actor} (${identity.role})`);
      warnIfTokenOverridden(ctx);
    });

  org
    .command("rename")
    .description("Rename the current organization (OWNER)")
    .argument("<name>")
    .option("--json", "print the API object")
    .action(async (name: string, options: { json?: boolean }) => {
      const renamed = await (await ctx.api()).patch<RenamedOrganization>("/organization", { name });
      if (options.json) return ctx.printJson(renamed);
      ctx.print(`Renamed the organization to ${renamed.name}`);
    });

  org
    .command("transfer")
    .description("Make another member an OWNER of the current organization; you become an ADMIN (OWNER)")
    .argument("<email>", "the member's email")
    .option("--json", "print the API object")
    .action(async (email: string, options: { json?: boolean }) => {
      const transferred = await (await ctx.api()).post<TransferredOrganization>("/organization/transfer", { email });
      if (options.json) return ctx.printJson(transferred);
      ctx.print(`${transferred.owner} now owns the organization; you are an ${transferred.yourRole}`);
    });

  org
    .command("delete")
    .description("Delete the current organization: DELETE deployments remove every environment, then it goes (OWNER)")
    .option("--yes", "do not ask for the organization's name")
    .option("--json", "print the API object")
    .action(async (options: { yes?: boolean; json?: boolean }) => {
      const api = await ctx.api();
      const { id, name } = await currentOrganization(ctx);
      const confirm = options.yes ? name : await typedName(ctx, name);
      if (confirm !== name) throw usageError(`you typed "${confirm}", not "${name}": nothing was deleted`);
      const deleted = await api.delete<DeletedOrganization>("/organization", { confirm });
      // Its token dies with it: the CLI moves to another organization it holds a token for.
      const config = await savedConfig(ctx);
      const rest = (config.organizations ?? []).filter((saved) => saved.id !== id);
      const next = rest[0];
      await saveConfig(ctx.io.env, { url: config.url, token: next?.token ?? config.token, ...(rest.length ? { organizations: rest } : {}) });
      if (options.json) return ctx.printJson(deleted);
      ctx.print(
        deleted.status === "DELETED"
          ? `Deleted organization ${name}`
          : `Deleting organization ${name}: ${deleted.deploymentIds.length} DELETE deployment(s) remove its environments, then it goes`,
      );
      if (next) ctx.print(`The CLI now acts in ${next.name}`);
      else ctx.print("The CLI holds no token for another organization: slipway login with one");
    });
}

/** The organization the CLI acts in now, with its current name. */
async function currentOrganization(ctx: Context): Promise<{ id: string; name: string }> {
  const api = await ctx.api();
  const [me, mine] = await Promise.all([api.get<WhoAmI>("/whoami"), api.get<MyOrganization[]>("/organizations")]);
  const name = mine.find((o) => o.organizationId === me.organizationId)?.name ?? me.organizationId;
  return { id: me.organizationId, name };
}

/**
 * The config file with the current token remembered under its organization, so a switch away
 * can come back. A token given by SLIPWAY_TOKEN stays out of the file.
 */
async function savedWithCurrent(ctx: Context, current: { id: string; name: string }): Promise<CliConfig> {
  const config = await savedConfig(ctx);
  return ctx.io.env.SLIPWAY_TOKEN ? config : remember(config, { ...current, token: (await ctx.config()).token });
}

/** What the config file holds, with the control plane in use. */
async function savedConfig(ctx: Context): Promise<CliConfig> {
  const effective = await ctx.config();
  const file = await readSavedConfig(ctx.io.env);
  return { url: effective.url, token: file.token ?? effective.token, organizations: file.organizations };
}

/** The config with `organization`'s token saved, replacing an older one for it. */
function remember(config: CliConfig, organization: SavedOrganization): CliConfig {
  const others = (config.organizations ?? []).filter((saved) => saved.id !== organization.id);
  return { ...config, organizations: [...others, { id: organization.id, name: organization.name, token: organization.token }] };
}

function warnIfTokenOverridden(ctx: Context): void {
  if (ctx.io.env.SLIPWAY_TOKEN) ctx.note("SLIPWAY_TOKEN is set: it still overrides the config file's token in this shell");
}

/** Asks for the organization's name on standard input, as the dashboard asks for it typed out. */
async function typedName(ctx: Context, name: string): Promise<string> {
  if (!ctx.io.stdin) throw usageError(`type the organization's name to confirm, or pass --yes`);
  return typedLine(ctx, `This deletes ${name}, its projects, environments and everything they run. Type its name to confirm:`);
}
