import type { Command } from "commander";
import type { WhoAmI } from "../api-types";
import { normalizeUrl, readSavedConfig, saveConfig } from "../config";
import type { Context } from "../context";
import { usageError } from "../errors";
import { keyValues } from "../format";
import { oneOf, readSecretFromStdin } from "../secret-input";

export function registerAuthCommands(program: Command, ctx: Context): void {
  program
    .command("login")
    .description("Check an API token against a control plane and save both in the config file")
    .requiredOption("--url <url>", "the control plane, e.g. http://localhost:3000")
    .option("--token <token>", "an API token (slipway token create, or the first boot's); visible to other users in ps: prefer --token-stdin")
    .option("--token-stdin", "read the API token from standard input")
    .option("--json", "print the identity as JSON")
    .action(async (options: { url: string; token?: string; tokenStdin?: boolean; json?: boolean }) => {
      oneOf({ "--token": options.token, "--token-stdin": options.tokenStdin });
      const token = options.tokenStdin ? (await readSecretFromStdin(ctx, "the API token")).trim() : options.token;
      if (!token) throw usageError('give the API token: --token-stdin (printf %s "$TOKEN" | slipway login --url … --token-stdin) or --token');
      const config = { url: normalizeUrl(options.url), token };
      // Verified before saving, so a typo never replaces a working config.
      const identity = await ctx.clientFor(config).get<WhoAmI>("/whoami");
      // The tokens saved for other organizations of the same control plane stay (slipway org switch).
      const saved = await readSavedConfig(ctx.io.env);
      const sameControlPlane = saved.url?.replace(/\/+$/, "") === config.url;
      const file = await saveConfig(ctx.io.env, sameControlPlane && saved.organizations?.length ? { ...config, organizations: saved.organizations } : config);
      if (options.json) return ctx.printJson(identity);
      ctx.print(`Logged in to ${config.url} as ${identity.actor} (${identity.role}); saved to ${file}`);
    });

  program
    .command("whoami")
    .description("Show who the configured token acts as")
    .option("--json", "print the API object")
    .action(async (options: { json?: boolean }) => {
      const api = await ctx.api();
      const identity = await api.get<WhoAmI>("/whoami");
      if (options.json) return ctx.printJson(identity);
      ctx.print(
        keyValues([
          ["actor", identity.actor],
          ["role", identity.role],
          ["organization", identity.organizationId],
          ["url", api.url],
        ]),
      );
    });
}
