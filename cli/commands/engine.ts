import { InvalidArgumentError, Option, type Command } from "commander";
import { normalizeUrl } from "../config";
import type { Context } from "../context";
import { CliError, usageError } from "../errors";
import { oneOf, readTokenFile } from "../secret-input";

type EngineOptions = {
  url: string;
  token?: string;
  tokenFile?: string;
  home?: string;
  routerPort?: string;
  runtime?: string;
  dockerHost?: string;
  allowLocalRepositories?: boolean;
};

function parsePortOption(value: string): string {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError("expected a port number");
  return value;
}

/**
 * `slipway engine`: serve a cluster from this host. The options become the engine's own
 * environment variables; the engine itself is loaded by bin/slipway.js, since the CLI code
 * must not import the engine (it is a separate program speaking only its protocol).
 */
export function registerEngineCommand(program: Command, ctx: Context): void {
  program
    .command("engine")
    .description("Run an engine for a cluster on this host (slipway cluster create prints the command)")
    .requiredOption("--url <url>", "the control plane's URL")
    .option("--token <token>", "the cluster's engine token; visible to other users in ps: prefer --token-file or $SLIPWAY_ENGINE_TOKEN")
    .option("--token-file <file>", "read the engine token from this file (- for standard input)")
    .option("--home <dir>", "where the engine keeps releases and state (default .slipway/engine)")
    .option("--router-port <n>", "port of the engine's HTTP router (default 8080)", parsePortOption)
    .addOption(
      new Option("--runtime <runtime>", "what runs the workloads: processes on this host, containers, or a Kubernetes cluster").choices([
        "local",
        "docker",
        "kubernetes",
      ]),
    )
    .option("--docker-host <url>", "with --runtime docker: the Docker Engine API (Docker or Podman), e.g. unix:///run/podman/podman.sock")
    .option("--allow-local-repositories", "clone file:// URLs and paths on this host (the cluster must allow them too)")
    .action(async (options: EngineOptions) => {
      if (!ctx.io.startEngine) throw new CliError("the engine runs only from the slipway executable (bin/slipway.js)");
      oneOf({ "--token": options.token, "--token-file": options.tokenFile });
      const token = options.tokenFile ? await readTokenFile(ctx, options.tokenFile, "the engine token") : (options.token ?? ctx.io.env.SLIPWAY_ENGINE_TOKEN);
      if (!token) throw usageError("give the engine token: --token-file <file>, $SLIPWAY_ENGINE_TOKEN, or --token");
      const env = {
        ...ctx.io.env,
        SLIPWAY_ENGINE_URL: normalizeUrl(options.url),
        SLIPWAY_ENGINE_TOKEN: token,
        ...(options.allowLocalRepositories ? { SLIPWAY_ENGINE_ALLOW_LOCAL_REPOSITORIES: "1" } : {}),
        ...(options.home ? { SLIPWAY_ENGINE_HOME: options.home } : {}),
        ...(options.routerPort ? { SLIPWAY_ROUTER_PORT: options.routerPort } : {}),
        ...(options.runtime ? { SLIPWAY_ENGINE_RUNTIME: options.runtime } : {}),
        ...(options.dockerHost ? { SLIPWAY_DOCKER_HOST: options.dockerHost } : {}),
      };
      await ctx.io.startEngine(env);
    });
}
