import { pathToFileURL } from "node:url";
import { Command, CommanderError } from "commander";
import packageJson from "../package.json" with { type: "json" };
import { registerAuditCommand } from "./commands/audit";
import { registerAuthCommands } from "./commands/auth";
import { registerClusterCommands } from "./commands/clusters";
import { registerDeploymentCommands } from "./commands/deployments";
import { registerEngineCommand } from "./commands/engine";
import { registerDomainCommands } from "./commands/domains";
import { registerEnvironmentCommands } from "./commands/environments";
import { registerGitCommands } from "./commands/git";
import { registerLogCommands } from "./commands/logs";
import { registerMetricsCommand } from "./commands/metrics";
import { registerNotifyCommands } from "./commands/notify";
import { registerOpenCommand } from "./commands/open";
import { registerOrganizationCommands } from "./commands/organizations";
import { registerProjectCommands } from "./commands/projects";
import { registerServiceCommands } from "./commands/services";
import { registerShellCommand } from "./commands/shell";
import { registerStageCommands } from "./commands/stages";
import { registerTokenCommands } from "./commands/tokens";
import { registerVariableCommands } from "./commands/variables";
import { Context, type CliIo } from "./context";
import { CliError, exitCodes, exitCodesHelp } from "./errors";
import { DEFAULT_RECONNECT_TIMEOUT_MS, RECONNECT_TIMEOUT_ENV, reconnectTimeoutMs } from "./reconnect";

export type { CliIo } from "./context";

/**
 * `slipway`: the command line of the control plane's REST API. `runCli` is the whole program
 * as a function of its arguments and io, returning the exit code, so tests drive it in-process
 * and bin/slipway.js is only the process around it.
 */
function buildProgram(ctx: Context, stderr: (text: string) => void): Command {
  const program = new Command("slipway")
    .description("Deploy from git to your own clusters: the Slipway command line")
    .version(packageJson.version, "-V, --version")
    .option(
      "--reconnect-timeout <duration>",
      `how long --watch and --follow wait for an unreachable control plane before giving up (30s, 5m, 1h; $${RECONNECT_TIMEOUT_ENV}, default ${DEFAULT_RECONNECT_TIMEOUT_MS / 60_000}m)`,
    )
    // Settings before any .command(): subcommands inherit them.
    .exitOverride()
    .configureOutput({
      writeOut: (text) => ctx.io.stdout.write(text),
      writeErr: stderr,
      // Commander's messages already start with "error:"; a suggestion goes on the same line.
      outputError: (text, write) => write(`${text.trim().replace(/\s*\n\s*/g, " ")}\n`),
    })
    .addHelpText(
      "after",
      `
Configuration: $SLIPWAY_CONFIG or ~/.config/slipway/config.json ({ "url", "token" }, written by
slipway login); SLIPWAY_URL and SLIPWAY_TOKEN override it.
Paths name things as <project>[/<env>[/<service>]]. Read commands take --json.
--watch and logs --follow ride out a restart of the control plane: they say on stderr that they
lost it, retry, and resume where they were; they give up (exit 1) after --reconnect-timeout.
${exitCodesHelp}`,
    );

  registerAuthCommands(program, ctx);
  registerProjectCommands(program, ctx);
  registerEnvironmentCommands(program, ctx);
  registerServiceCommands(program, ctx);
  registerVariableCommands(program, ctx);
  registerStageCommands(program, ctx);
  registerDomainCommands(program, ctx);
  registerDeploymentCommands(program, ctx);
  registerLogCommands(program, ctx);
  registerShellCommand(program, ctx);
  registerMetricsCommand(program, ctx);
  registerOpenCommand(program, ctx);
  registerClusterCommands(program, ctx);
  registerTokenCommands(program, ctx);
  registerOrganizationCommands(program, ctx);
  registerAuditCommand(program, ctx);
  registerGitCommands(program, ctx);
  registerNotifyCommands(program, ctx);
  registerEngineCommand(program, ctx);
  // A program-wide option, valid before or after the command; parsed before any action runs.
  program.hook("preAction", () => {
    ctx.reconnectTimeoutMs = reconnectTimeoutMs(program.opts<{ reconnectTimeout?: string }>().reconnectTimeout, ctx.io.env);
  });
  return program;
}

export async function runCli(argv: string[], io: CliIo = processIo()): Promise<number> {
  const ctx = new Context(io);
  const writeError = (message: string) => io.stderr.write(`error: ${message.replace(/\s*\n\s*/g, " ")}\n`);
  // Commander writes a group's whole help to stderr when its command is missing; that becomes
  // one `error:` line instead, so every failure is exactly one line.
  let heldErr = "";
  const program = buildProgram(ctx, (text) => {
    heldErr += text;
  });
  let current: Command = program;
  program.hook("preSubcommand", (_parent, sub) => {
    current = sub;
  });
  const flush = () => {
    if (heldErr) io.stderr.write(heldErr);
    heldErr = "";
  };

  try {
    await program.parseAsync(argv, { from: "user" });
    flush();
    return ctx.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // `--help`, `help <command>` and `--version` end through here too, with exit code 0.
      if (error.exitCode === 0) {
        flush();
        return exitCodes.ok;
      }
      if (error.code === "commander.help") {
        heldErr = "";
        writeError(missingCommand(current));
        return exitCodes.usage;
      }
      flush();
      return exitCodes.usage;
    }
    flush();
    if (error instanceof CliError) {
      writeError(error.message);
      return error.exitCode;
    }
    writeError(error instanceof Error ? error.message : String(error));
    return exitCodes.failure;
  }
}

function missingCommand(command: Command): string {
  const names = command.commands.map((c) => c.name()).filter((name) => name !== "help");
  const path = command.parent ? `slipway ${command.name()}` : "slipway";
  if (!command.parent) return `missing command (run slipway --help for the list)`;
  return `missing command: ${path} <${names.join("|")}>`;
}

function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env };
}

// `tsx cli/main.ts …` works too; bin/slipway.js is the usual way in.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await runCli(process.argv.slice(2));
}
