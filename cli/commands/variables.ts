import type { Command } from "commander";
import type { Variable } from "../api-types";
import type { ApiClient } from "../client";
import type { Context } from "../context";
import { usageError } from "../errors";
import { MASKED, table } from "../format";
import { parsePath, type PathDepth } from "../paths";
import { readSecretFile, readSecretFromStdin } from "../secret-input";

/** The depth of the path names the scope: `project`, `project/env`, `project/env/service`. */
const scopes: Record<PathDepth, Variable["scope"]> = { 1: "PROJECT", 2: "ENVIRONMENT", 3: "SERVICE" };

async function resolveScope(api: ApiClient, pathText: string): Promise<{ scope: Variable["scope"]; targetId: string }> {
  const path = parsePath(pathText, { min: 1, max: 3 });
  const resolved = await api.resolve(path.text);
  const targetId = path.depth === 1 ? resolved.projectId : path.depth === 2 ? resolved.environmentId : resolved.serviceId;
  return { scope: scopes[path.depth], targetId: targetId! };
}

/** `KEY=VALUE`, split at the first `=` so values may contain more of them. */
function parseAssignment(text: string): { key: string; value: string } {
  const index = text.indexOf("=");
  if (index <= 0) throw usageError(`"${text}" is not KEY=VALUE`);
  return { key: text.slice(0, index), value: text.slice(index + 1) };
}

export function registerVariableCommands(program: Command, ctx: Context): void {
  const variable = program
    .command("var")
    .description("Variables of a project, an environment or a service (the narrower scope wins)")
    .addHelpText("after", "\nThe scope is the path's depth: <project>, <project>/<env> or <project>/<env>/<service>.");

  variable
    .command("set")
    .description("Set one or more variables; secrets are write-only")
    .argument("<scope>", "<project>, <project>/<env> or <project>/<env>/<service>")
    .argument("<KEY=VALUE...>", "with --secret-stdin: the KEY alone")
    .option("--secret", "store encrypted and never show the value again (a value given here is visible to other users in ps: prefer --secret-stdin)")
    .option("--secret-stdin", "set one secret KEY to what standard input holds (one trailing newline dropped)")
    .option("--no-overwrite", "refuse (exit 5) a KEY already set at this scope instead of replacing its value; the keys before it are set")
    .option("--json", "print the API objects")
    .addHelpText(
      "after",
      '\nA KEY already set at the scope is overwritten, as a config change should be in scripts; --no-overwrite refuses instead.\nExample: printf %s "$STRIPE_KEY" | slipway var set shop/prod STRIPE_KEY --secret-stdin',
    )
    .action(async (scopePath: string, assignments: string[], options: { secret?: boolean; secretStdin?: boolean; overwrite: boolean; json?: boolean }) => {
      let pairs: { key: string; value: string }[];
      if (options.secretStdin) {
        if (assignments.length !== 1 || assignments[0]!.includes("="))
          throw usageError("--secret-stdin sets one variable: give its KEY alone, the value comes from standard input");
        pairs = [{ key: assignments[0]!, value: await readSecretFromStdin(ctx, `the value of ${assignments[0]}`) }];
        options.secret = true;
      } else {
        pairs = assignments.map(parseAssignment);
      }
      const api = await ctx.api();
      const target = await resolveScope(api, scopePath);
      const saved: Variable[] = [];
      for (const { key, value } of pairs)
        saved.push(await api.put<Variable>("/variables", { ...target, key, value, secret: options.secret ?? false, overwrite: options.overwrite }));
      if (options.json) return ctx.printJson(saved);
      for (const v of saved) ctx.print(`Set ${v.secret ? "secret " : ""}${v.key} on ${scopePath} (${v.scope})`);
    });

  variable
    .command("import")
    .description("Set every variable of a .env file at one scope, all or nothing (the server reads it with dotenv's parser)")
    .argument("<scope>", "<project>, <project>/<env> or <project>/<env>/<service>")
    .argument("<file>", "a .env file (KEY=value lines, quotes and comments as dotenv reads them); - reads standard input")
    .option("--secret", "store every value encrypted, write-only")
    .option("--json", "print the API object")
    .action(async (scopePath: string, file: string, options: { secret?: boolean; json?: boolean }) => {
      const content = await readSecretFile(ctx, file, "the .env file");
      const api = await ctx.api();
      const target = await resolveScope(api, scopePath);
      const result = await api.post<{ imported: number; keys: string[] }>("/variables/import", { ...target, content, secret: options.secret ?? false });
      if (options.json) return ctx.printJson(result);
      ctx.print(
        `Imported ${result.imported} ${options.secret ? "secret" : "variable"}${result.imported === 1 ? "" : "s"} on ${scopePath}: ${result.keys.join(", ")}`,
      );
    });

  variable
    .command("list")
    .description(
      "List the variables set at one scope (secret values are masked); an environment's and a service's include what lifecycle jobs output, with the job",
    )
    .argument("<scope>", "<project>, <project>/<env> or <project>/<env>/<service>")
    .option("--json", "print the API objects (secret values are null, and so are jobs' outputs: the engine alone keeps those)")
    .action(async (scopePath: string, options: { json?: boolean }) => {
      const api = await ctx.api();
      const variables = await api.get<Variable[]>("/variables", await resolveScope(api, scopePath));
      if (options.json) return ctx.printJson(variables);
      if (variables.length === 0) return ctx.print(`No variables on ${scopePath}`);
      ctx.print(
        table(variables, [
          { header: "KEY", value: (v) => v.key },
          { header: "VALUE", value: (v) => (v.secret ? MASKED : v.job ? "(kept by the engine)" : v.value) },
          { header: "SECRET", value: (v) => (v.secret ? "yes" : "no") },
          { header: "SET BY", value: (v) => (v.job ? `job ${v.job.name}` : "-") },
        ]),
      );
    });

  variable
    .command("unset")
    .description("Remove a variable")
    .argument("<scope>", "<project>, <project>/<env> or <project>/<env>/<service>")
    .argument("<KEY>")
    .action(async (scopePath: string, key: string) => {
      const api = await ctx.api();
      await api.delete("/variables", { ...(await resolveScope(api, scopePath)), key });
      ctx.print(`Unset ${key} on ${scopePath}`);
    });
}
