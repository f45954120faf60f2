import { Option, type Command } from "commander";
import { missedRunPolicies } from "../../engine/protocol/snapshot";
import type { Deployment, GitTriggers, Service } from "../api-types";
import { assertDeletionConfirmable, confirmDeletion } from "../confirm";
import type { Context } from "../context";
import { usageError } from "../errors";
import { formatAge, keyValues, shortCommit, table } from "../format";
import { parsePath, resolveEnvironment, resolveService } from "../paths";
import { reportDeployment } from "../watch";
import { commandArgv, onOff, parseCount, parseEvents, parseImage, parsePort, readGitCredentials } from "./service-options";
import { registerServicePlanCommand } from "./service-plan";
import { registerServiceUpdate } from "./service-update";

type CreateOptions = {
  git?: string;
  gitTokenStdin?: boolean;
  gitUser?: string;
  gitSshKeyFile?: string;
  /** Read from standard input (--git-token-stdin) or a file (--git-ssh-key-file), never an argument. */
  credentials?: { username: string; password: string } | { sshPrivateKey: string };
  /** False with --no-check. */
  check?: boolean;
  image?: string;
  database?: string;
  job?: string;
  cron?: string;
  tz?: string;
  missedRuns?: string;
  on?: string[];
  timeout?: number;
  retries?: number;
  branch?: string;
  commit?: string;
  root?: string;
  installCommand?: string;
  build?: string;
  start?: string;
  nodeVersion?: string;
  outputDirectory?: string;
  pythonVersion?: string;
  port?: number;
  health?: string;
  json?: boolean;
};

/**
 * The service's source: `url#ref` for git (`url (default branch)` when it names no branch: saved
 * unchecked, each deployment clones the repository's default branch), `image:tag` for a
 * container, the engine for a database: what a reader needs to recognise it.
 */
function source(service: Service): string {
  const config = service.config;
  if ("engine" in config) return `${config.engine} on port ${config.connection.port}`;
  if ("image" in config) return `${config.image.name}:${config.image.tag}`;
  const { ref } = config.git;
  const at = !ref ? " (default branch)" : "branch" in ref ? `#${ref.branch}` : `#${shortCommit(ref.commit)}`;
  const root = config.git.rootDirectory ? ` (${config.git.rootDirectory})` : "";
  return `${config.git.url}${at}${root}`;
}

/** Only what the user gave: the API fills in its own defaults (the repository's default branch, its root …). */
function configFrom(options: CreateOptions & { git: string }) {
  if (options.branch && options.commit) throw usageError("give --branch or --commit, not both");
  const ref = options.commit ? { commit: options.commit } : options.branch ? { branch: options.branch } : undefined;
  return {
    git: { url: options.git, ref, rootDirectory: options.root, credentials: options.credentials },
    installCommand: options.installCommand,
    buildCommand: options.build,
    nodeVersion: options.nodeVersion,
    pythonVersion: options.pythonVersion,
    startCommand: options.start,
    outputDirectory: options.outputDirectory,
    port: options.port,
    healthCheckPath: options.health,
  };
}

/** The request body of `service create`, from exactly one of --git, --image, --database (--job goes with --git). */
function createBody(options: CreateOptions) {
  const sources = [
    options.git && !options.job ? "--git" : null,
    options.image ? "--image" : null,
    options.database ? "--database" : null,
    options.job ? "--job" : null,
  ].filter(Boolean);
  if (sources.length !== 1)
    throw usageError("give one of --git <url> (an application), --image <name:tag>, --database <postgresql|redis>, or --job <command> with --git <url>");
  if (options.database) {
    if (options.database !== "postgresql" && options.database !== "redis") throw usageError("--database takes postgresql or redis");
    return { kind: "DATABASE", config: { engine: options.database } };
  }
  if (options.image) {
    // A container's command is argv, run without a shell (service-options.ts commandArgv).
    const command = options.start === undefined ? undefined : commandArgv(options.start);
    return { kind: "CONTAINER", config: { image: parseImage(options.image), command, port: options.port, healthCheckPath: options.health } };
  }
  if (options.job) {
    if (!options.git) throw usageError("a job runs code from git: give --git <url> with --job");
    if (!!options.cron === !!options.on) throw usageError("give --cron <expression> (a cron job) or --on <start,stop,delete> (a lifecycle job)");
    if (options.missedRuns && !options.cron) throw usageError("--missed-runs is for cron jobs: give it with --cron");
    const { git, installCommand, buildCommand, nodeVersion, pythonVersion } = configFrom({ ...options, git: options.git });
    const trigger = options.cron
      ? { type: "cron", schedule: options.cron, timeZone: options.tz, missedRuns: options.missedRuns }
      : { type: "lifecycle", on: options.on };
    return {
      kind: "JOB",
      config: {
        git,
        installCommand,
        buildCommand,
        nodeVersion,
        pythonVersion,
        command: options.job,
        trigger,
        timeoutSeconds: options.timeout,
        retries: options.retries,
      },
    };
  }
  return { kind: "APPLICATION", config: configFrom({ ...options, git: options.git! }) };
}

/** `--include a,b --include c` (comma or newline separated, repeatable) as a list of globs. */
function collectGlobs(value: string, previous: string[] | undefined): string[] {
  return [
    ...(previous ?? []),
    ...value
      .split(/[,\n]/)
      .map((glob) => glob.trim())
      .filter(Boolean),
  ];
}

type TriggerOptions = { autoDeploy?: boolean; include?: string[]; exclude?: string[]; tags?: boolean; json?: boolean };

export function registerServiceCommands(program: Command, ctx: Context): void {
  const service = program.command("service").description("Services of an environment: list, create, update, delete, triggers");

  service
    .command("list")
    .description("List an environment's services")
    .argument("<project/env>")
    .option("--json", "print the API objects")
    .action(async (pathText: string, options: { json?: boolean }) => {
      const api = await ctx.api();
      const { environmentId } = await resolveEnvironment(api, pathText);
      const services = await api.get<Service[]>(`/environments/${environmentId}/services`);
      if (options.json) return ctx.printJson(services);
      if (services.length === 0) return ctx.print(`No services in ${pathText} yet: slipway service create ${pathText}/<service> --git <url>`);
      ctx.print(
        table(services, [
          { header: "NAME", value: (s) => s.name },
          { header: "KIND", value: (s) => s.kind },
          { header: "STATE", value: (s) => s.runtime?.state ?? "not deployed" },
          { header: "SOURCE", value: source },
          { header: "CREATED", value: (s) => formatAge(s.createdAt) },
          { header: "ID", value: (s) => s.id },
        ]),
      );
    });

  service
    .command("create")
    .description("Create an application built from git, a container run from an image, a database, or a job")
    .argument("<project/env/service>")
    .option("--git <url>", "repository URL: https, ssh or git (file:// where the cluster allows local repositories)")
    .option("--image <name:tag>", "run this image instead (a CONTAINER service; needs a docker cluster)")
    .option("--database <engine>", "a DATABASE service: postgresql or redis (its connection is generated)")
    .option("--job <command>", "a JOB service running this command from --git, on --cron or --on")
    .option("--cron <expression>", "job: run on this cron schedule (5 fields, or 6 with seconds first)")
    .option("--tz <zone>", "job: the schedule's IANA time zone (default UTC)")
    .addOption(
      new Option(
        "--missed-runs <policy>",
        "job: what to do about runs scheduled while the engine was down: run once on its return, or skip them (default run-once)",
      ).choices(missedRunPolicies),
    )
    .option("--on <events>", "job: run when the environment starts, stops or is deleted (start,stop,delete)", parseEvents)
    .option("--timeout <seconds>", "job: stop a run after this long (default 600)", (value: string) => parseCount(86_400)(value))
    .option("--retries <n>", "job: retry a failed run this many times (default 0)", parseCount(10))
    .option("--git-token-stdin", "read a token for an https repository from standard input: kept as a secret, shown as [secret]")
    .option("--git-user <name>", "with --git-token-stdin: the user the token goes with (default x-access-token, as GitHub and GitLab take it)")
    .option("--git-ssh-key-file <file>", "an ssh repository's deploy key: its private key file (- reads standard input), kept as a secret")
    .option("--branch <branch>", "branch to deploy (default: the repository's default branch)")
    .option("--commit <sha>", "exact commit to deploy instead of a branch")
    .option("--root <dir>", "directory of the app inside the repository")
    .option("--install-command <cmd>", "install command, for dependencies (detected from the lockfile by default: npm ci, yarn install, pnpm install)")
    .option("--build <cmd>", "build command (detected from the repository by default)")
    .option("--start <cmd>", "start command (detected from the repository by default); with --image, the container's command, split into argv without a shell")
    .option("--output-directory <dir>", "serve this directory of a static site (relative to --root), instead of the one detected: dist, build, out...")
    .option("--port <n>", "port the app listens on (it also gets PORT)", parsePort)
    .option("--health <path>", "HTTP path that answers 2xx when the app is ready, e.g. /health")
    .option("--node-version <range>", "Node version, a semver range such as 22 or '>=20 <23' (wins over engines.node and .nvmrc)")
    .option("--python-version <version>", "Python version, such as 3.12 or 3.11.9, one of the engine host's (wins over .python-version and runtime.txt)")
    .option(
      "--no-check",
      "save without checking the repository (that it answers and has the branch): for one pushed later, or a git host only the engine reaches",
    )
    .option("--json", "print the API object")
    .action(async (pathText: string, options: CreateOptions) => {
      const path = parsePath(pathText, { min: 3, max: 3 });
      if (options.gitTokenStdin && !options.git) throw usageError("--git-token-stdin goes with --git <https URL>");
      if (options.gitSshKeyFile && !options.git) throw usageError("--git-ssh-key-file goes with --git <ssh URL>");
      const credentials = await readGitCredentials(ctx, options);
      const body = createBody({ ...options, credentials });
      const api = await ctx.api();
      const { environmentId } = await resolveEnvironment(api, `${path.project}/${path.environment}`);
      const created = await api.post<Service>("/services", {
        environmentId,
        name: path.service,
        ...body,
        ...(options.check === false ? { checkRepository: false } : {}),
      });
      if (options.json) return ctx.printJson(created);
      ctx.print(`Created service ${path.text} from ${source(created)} (${created.id})`);
    });

  registerServiceUpdate(service, ctx);
  registerServicePlanCommand(service, ctx);

  service
    .command("delete")
    .description("Delete a service: a DELETE deployment stops it, then removes it")
    .argument("<project/env/service>")
    .option("--yes", "do not ask for the service's name (required without a terminal)")
    .option("--watch", "follow the deletion until it ends")
    .option("--json", "print the API object")
    .action(async (pathText: string, options: { yes?: boolean; watch?: boolean; json?: boolean }) => {
      const path = parsePath(pathText, { min: 3, max: 3 });
      const deletion = {
        what: `service ${path.text}`,
        name: path.service!,
        consequence: "a DELETE deployment stops it, then removes it with its data and variables",
        yes: options.yes,
      };
      assertDeletionConfirmable(ctx, deletion);
      const api = await ctx.api();
      const { serviceId } = await resolveService(api, pathText);
      await confirmDeletion(ctx, deletion);
      const deployment = await api.delete<Deployment>(`/services/${serviceId}`);
      ctx.exitCode = await reportDeployment(ctx, { deployment, merged: false }, pathText, options);
    });

  service
    .command("triggers")
    .description("When a git push deploys the service: without options, print them; with options, change them")
    .argument("<project/env/service>")
    .option("--auto-deploy <on|off>", "deploy on push to the branch the service follows", onOff)
    .option("--include <glob>", "deploy only when a changed file matches (repeatable, comma separated); --include '' clears", collectGlobs)
    .option("--exclude <glob>", "changes only to matching files never deploy (repeatable, comma separated); --exclude '' clears", collectGlobs)
    .option("--tags <on|off>", "also deploy tag pushes, at the tag's commit", onOff)
    .option("--json", "print the API object")
    .action(async (pathText: string, options: TriggerOptions) => {
      const api = await ctx.api();
      const { serviceId } = await resolveService(api, pathText);
      let triggers = await api.get<GitTriggers>(`/services/${serviceId}/git-triggers`);
      const changing = options.autoDeploy !== undefined || options.include !== undefined || options.exclude !== undefined || options.tags !== undefined;
      if (changing) {
        triggers = await api.put<GitTriggers>(`/services/${serviceId}/git-triggers`, {
          autoDeploy: options.autoDeploy ?? triggers.autoDeploy,
          includePaths: options.include ?? triggers.includePaths,
          excludePaths: options.exclude ?? triggers.excludePaths,
          followTags: options.tags ?? triggers.followTags,
        });
      }
      if (options.json) return ctx.printJson(triggers);
      ctx.print(
        keyValues([
          ["auto-deploy", triggers.autoDeploy ? "on" : "off"],
          ["include", triggers.includePaths.length > 0 ? triggers.includePaths.join(", ") : "any file"],
          ["exclude", triggers.excludePaths.length > 0 ? triggers.excludePaths.join(", ") : "none"],
          ["tags", triggers.followTags ? "on" : "off"],
        ]),
      );
    });
}
