import { Option, type Command } from "commander";
import { missedRunPolicies, restartPolicies } from "../../engine/protocol/snapshot";
import type { Service } from "../api-types";
import type { Context } from "../context";
import { usageError } from "../errors";
import { resolveService } from "../paths";
import { readSecretFromStdin } from "../secret-input";
import { commandArgv, onOff, parseCount, parseEvents, parseImage, parseNumber, parsePort, parseSleepAfter, readGitCredentials } from "./service-options";

/**
 * `slipway service update p/e/s`: one option per setting of a service's config, for the kinds
 * that have it. The API merges what it is sent into the stored config and validates the result
 * with the kind's own schema (server/services/services.ts updateService), so only the settings
 * given change; `--unset <setting>` (repeatable) sets an optional one back to its default or to
 * detection.
 *
 * Each setting is one row of `settings`: its option, and per kind where it goes in the config
 * (a dotted path), or how it changes the config when a path cannot say it. A new field of a
 * kind's config is one more row.
 */
type Kind = "APPLICATION" | "CONTAINER" | "JOB";
type Draft = Record<string, unknown>;
/**
 * A dotted path in the config; a path and the value to put there made from the option's; or a
 * function for what a path cannot say. `--unset` removes what is at the path, or calls the
 * function with undefined.
 */
type Target = string | { path: string; value: (given: never) => unknown } | ((config: Draft, given: never) => void);
type Setting = {
  /** The option's name, as --unset names it too. */
  name: string;
  /** Commander's flags: `--name <value>`. */
  flags: string;
  description: string;
  parse?: (value: string) => unknown;
  choices?: readonly string[];
  to: Partial<Record<Kind, Target>>;
  /** Required by the kind's schema: no --unset. */
  required?: boolean;
};

/** Settings of the kinds built from a repository, and of those that serve HTTP. */
const fromGit = (path: string): Partial<Record<Kind, Target>> => ({ APPLICATION: path, JOB: path });
const served = (path: string): Partial<Record<Kind, Target>> => ({ APPLICATION: path, CONTAINER: path });
/** `--branch`/`--commit`: the ref object (`{ branch }` or `{ commit }`). */
function gitRef(key: "branch" | "commit"): Partial<Record<Kind, Target>> {
  const target = { path: "git.ref", value: (value: string) => ({ [key]: value }) };
  return { APPLICATION: target, JOB: target };
}

/** A cron trigger keeps its time zone and missed-runs policy when only the schedule changes; a lifecycle one becomes a cron one. */
function cronTrigger(config: Draft, schedule: string) {
  const trigger = config.trigger as { type: string } | undefined;
  config.trigger = trigger?.type === "cron" ? { ...trigger, schedule } : { type: "cron", schedule };
}

function cronField(key: "timeZone" | "missedRuns") {
  return (config: Draft, value: string | undefined) => {
    const trigger = config.trigger as { type: string } | undefined;
    if (trigger?.type !== "cron") throw usageError(`--${key === "timeZone" ? "tz" : "missed-runs"} is for a cron job: give --cron <expression> with it`);
    config.trigger = { ...trigger, [key]: value };
  };
}

export const settings: Setting[] = [
  // Where the code comes from (credentials: --git-token-stdin, --git-ssh-key-file, below).
  { name: "git", flags: "--git <url>", description: "repository URL", to: fromGit("git.url"), required: true },
  { name: "branch", flags: "--branch <branch>", description: "follow this branch (unset: the repository's default branch)", to: gitRef("branch") },
  { name: "commit", flags: "--commit <sha>", description: "deploy this exact commit instead of a branch", to: gitRef("commit") },
  { name: "root", flags: "--root <dir>", description: "directory of the app inside the repository", to: fromGit("git.rootDirectory") },
  // How it is built and run.
  {
    name: "install-command",
    flags: "--install-command <cmd>",
    description: "install command (unset: detected from the lockfile)",
    to: fromGit("installCommand"),
  },
  { name: "build", flags: "--build <cmd>", description: "build command", to: fromGit("buildCommand") },
  {
    name: "node-version",
    flags: "--node-version <range>",
    description: "Node version, a semver range (unset: the repository's files, else LTS)",
    to: fromGit("nodeVersion"),
  },
  {
    name: "python-version",
    flags: "--python-version <version>",
    description: "Python version such as 3.12, one of the engine host's (unset: .python-version or runtime.txt, else the host's python3)",
    to: fromGit("pythonVersion"),
  },
  {
    name: "output-directory",
    flags: "--output-directory <dir>",
    description: "serve this directory of a static site, relative to --root (unset: the one the framework builds)",
    to: { APPLICATION: "outputDirectory" },
  },
  {
    name: "start",
    flags: "--start <cmd>",
    description: "start command; a container's command (argv, split without a shell)",
    to: { APPLICATION: "startCommand", CONTAINER: { path: "command", value: commandArgv } },
  },
  {
    name: "command",
    flags: "--command <cmd>",
    description: "a job's command; a container's command (argv, split without a shell)",
    to: { JOB: "command", CONTAINER: { path: "command", value: commandArgv } },
  },
  { name: "port", flags: "--port <n>", description: "port the app listens on", parse: parsePort, to: served("port") },
  { name: "health", flags: "--health <path>", description: "HTTP path that answers 2xx when ready", to: served("healthCheckPath") },
  {
    name: "health-timeout",
    flags: "--health-timeout <seconds>",
    description: "how long a new release may take to become healthy",
    parse: parseCount(600),
    to: served("healthCheckTimeoutSeconds"),
  },
  {
    name: "build-timeout",
    flags: "--build-timeout <seconds>",
    description: "stop a build after this long",
    parse: parseCount(3600),
    to: fromGit("buildTimeoutSeconds"),
  },
  {
    name: "sleep-after",
    flags: "--sleep-after <minutes|never>",
    description: "stop it after this many minutes without a request, to start again on the next one; never: keep it running (unset: the environment's default)",
    parse: parseSleepAfter,
    to: served("sleepAfterMinutes"),
  },
  { name: "memory", flags: "--memory <MiB>", description: "memory limit", parse: parseCount(1_048_576), to: served("resources.memoryMb") },
  { name: "cpus", flags: "--cpus <n>", description: "CPU limit (0.5 = half a core)", parse: parseNumber, to: served("resources.cpus") },
  // Docker builds of an application (container runtimes).
  { name: "dockerfile", flags: "--dockerfile <path>", description: "Dockerfile, relative to the build context", to: { APPLICATION: "docker.dockerfile" } },
  { name: "docker-context", flags: "--docker-context <dir>", description: "build context, relative to the root", to: { APPLICATION: "docker.context" } },
  { name: "docker-target", flags: "--docker-target <stage>", description: "stage of a multi-stage Dockerfile", to: { APPLICATION: "docker.target" } },
  {
    name: "build-args",
    flags: "--build-args <names>",
    description: "variables passed as build arguments (comma separated)",
    parse: (value) => value.split(",").flatMap((name) => (name.trim() ? [name.trim()] : [])),
    to: { APPLICATION: "docker.buildArgs" },
  },
  // A container's image and how it runs (registry credentials: --registry-user with --registry-password-stdin, below).
  {
    name: "image",
    flags: "--image <name:tag>",
    description: "image to run (tag latest when none is given)",
    // The API merges the image one level deeper: a name alone would keep the old tag.
    to: { CONTAINER: { path: "image", value: (text: string) => ({ tag: "latest", ...parseImage(text) }) } },
    required: true,
  },
  {
    name: "restart-policy",
    flags: "--restart-policy <policy>",
    description: "when the container restarts",
    choices: restartPolicies,
    to: { CONTAINER: "restartPolicy" },
  },
  { name: "user", flags: "--user <user>", description: "run as this uid, uid:gid or name instead of the image's USER", to: { CONTAINER: "user" } },
  {
    name: "read-only",
    flags: "--read-only <on|off>",
    description: "read-only root file system (a tmpfs at /tmp)",
    parse: onOff,
    to: { CONTAINER: "readOnlyRootFilesystem" },
  },
  // When and how a job runs.
  { name: "cron", flags: "--cron <expression>", description: "run on this cron schedule", to: { JOB: cronTrigger }, required: true },
  { name: "tz", flags: "--tz <zone>", description: "the cron schedule's IANA time zone", to: { JOB: cronField("timeZone") } },
  {
    name: "missed-runs",
    flags: "--missed-runs <policy>",
    description: "runs missed while the engine was down",
    choices: missedRunPolicies,
    to: { JOB: cronField("missedRuns") },
  },
  {
    name: "on",
    flags: "--on <events>",
    description: "run when the environment starts, stops or is deleted (start,stop,delete)",
    parse: parseEvents,
    to: { JOB: (config: Draft, on: string[]) => (config.trigger = { type: "lifecycle", on }) },
    required: true,
  },
  { name: "timeout", flags: "--timeout <seconds>", description: "stop a job's run after this long", parse: parseCount(86_400), to: { JOB: "timeoutSeconds" } },
  { name: "retries", flags: "--retries <n>", description: "retry a failed run this many times", parse: parseCount(10), to: { JOB: "retries" } },
];

/** Secrets, read from standard input or a file: their own options, unset as `git-credentials` and `registry-credentials`. */
const credentialSettings = ["git-credentials", "registry-credentials"] as const;

type UpdateOptions = Record<string, unknown> & {
  gitTokenStdin?: boolean;
  gitUser?: string;
  gitSshKeyFile?: string;
  registryUser?: string;
  registryPasswordStdin?: boolean;
  unset?: string[];
  check?: boolean;
  json?: boolean;
};

/** Commander's camelCase key of a setting's option. */
const optionKey = (name: string) => name.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());

function setPath(config: Draft, path: string, value: unknown): void {
  const keys = path.split(".");
  const last = keys.pop()!;
  let node = config;
  for (const key of keys) {
    const next = node[key];
    node = node[key] = typeof next === "object" && next !== null ? { ...(next as Draft) } : {};
  }
  if (value === undefined) delete node[last];
  else node[last] = value;
}

const article = (kind: Kind) => (kind === "APPLICATION" ? "an" : "a");

function kindOf(service: Service): Kind | null {
  return service.kind === "DATABASE" ? null : service.kind;
}

/**
 * The request's config: for each top-level key that changed, its whole new value (nested ones
 * like `resources` are replaced as a whole by the API), or null to remove it.
 */
function changedKeys(before: Draft, after: Draft): Draft {
  const patch: Draft = {};
  for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (JSON.stringify(before[key]) !== JSON.stringify(after[key])) patch[key] = after[key] ?? null;
  }
  return patch;
}

/** The stored config as the API showed it, without the hidden credentials ("[secret]"): those stay stored unless replaced. */
function editableConfig(service: Service): Draft {
  const config = structuredClone(service.config) as Draft;
  for (const key of ["git", "image"]) {
    const nested = config[key] as Draft | undefined;
    if (nested && "credentials" in nested) config[key] = Object.fromEntries(Object.entries(nested).filter(([name]) => name !== "credentials"));
  }
  return config;
}

async function updateBody(ctx: Context, service: Service, options: UpdateOptions): Promise<{ config: Draft; changed: string[] }> {
  const kind = kindOf(service);
  if (!kind && options.sleepAfter !== undefined)
    throw usageError("--sleep-after is for applications and containers: a database must answer its applications at any time");
  if (!kind) throw usageError("a DATABASE service's settings cannot change: its engine is fixed and its connection generated");
  if (kind === "JOB" && options.sleepAfter !== undefined)
    throw usageError("--sleep-after is for applications and containers: a job runs on its triggers, not on requests");
  const unset = options.unset ?? [];
  const given = settings.filter((setting) => options[optionKey(setting.name)] !== undefined);
  if (options.branch !== undefined && options.commit !== undefined) throw usageError("give --branch or --commit, not both");
  const names = new Set(settings.map((setting) => setting.name));
  for (const name of unset) {
    if (!names.has(name) && !(credentialSettings as readonly string[]).includes(name))
      throw usageError(`--unset ${name}: not a setting (one of ${[...names, ...credentialSettings].join(", ")})`);
    if (given.some((setting) => setting.name === name)) throw usageError(`give --${name} or --unset ${name}, not both`);
  }
  const offKind = [...given.map((setting) => setting.name), ...unset.filter((name) => names.has(name))].find(
    (name) => !settings.find((setting) => setting.name === name)!.to[kind],
  );
  if (offKind) throw usageError(`--${offKind} is not a setting of ${article(kind)} ${kind} service`);
  const required = unset.find((name) => settings.find((setting) => setting.name === name)?.required);
  if (required) throw usageError(`--unset ${required}: ${article(kind)} ${kind} service cannot go without it`);

  const before = editableConfig(service);
  const after = structuredClone(before);
  for (const setting of given) apply(after, setting.to[kind]!, options[optionKey(setting.name)]);
  for (const name of unset) {
    const target = settings.find((setting) => setting.name === name)?.to[kind];
    if (target) apply(after, target, undefined);
  }
  // Objects left empty (resources, docker) go: the API then applies its defaults.
  for (const [key, value] of Object.entries(after))
    if (typeof value === "object" && value !== null && !Array.isArray(value) && Object.keys(value).length === 0) delete after[key];
  const config = changedKeys(before, after);

  const credentials = await readGitCredentials(ctx, { ...options, git: options.git as string | undefined });
  if (credentials || unset.includes("git-credentials")) {
    if (kind === "CONTAINER") throw usageError("a CONTAINER has no repository: its registry takes --registry-user and --registry-password-stdin");
    config.git = { ...(after.git as Draft), credentials: credentials ?? null };
  }
  if (options.registryUser !== undefined || options.registryPasswordStdin || unset.includes("registry-credentials")) {
    if (kind !== "CONTAINER") throw usageError("registry credentials are a CONTAINER's: give them to a service run from an image");
    if (!options.registryUser !== !options.registryPasswordStdin) throw usageError("give --registry-user and --registry-password-stdin together");
    const registry = options.registryUser ? { username: options.registryUser, password: await readSecretFromStdin(ctx, "the registry's password") } : null;
    config.image = { ...(after.image as Draft), credentials: registry };
  }
  const changed = [...given.map((setting) => setting.name), ...unset];
  if (credentials) changed.push("git-credentials");
  if (options.registryUser) changed.push("registry-credentials");
  if (changed.length === 0) throw usageError("nothing to change: give the settings to change (slipway service update --help lists them)");
  return { config, changed };
}

/** Puts an option's value where its target says; undefined (--unset) removes it. */
function apply(config: Draft, target: Target, value: unknown): void {
  if (typeof target === "string") setPath(config, target, value);
  else if (typeof target === "function") (target as (config: Draft, given: unknown) => void)(config, value);
  else setPath(config, target.path, value === undefined ? undefined : (target.value as (given: unknown) => unknown)(value));
}

export function registerServiceUpdate(service: Command, ctx: Context): void {
  const command = service
    .command("update")
    .description("Change a service's settings: only those given change, --unset <setting> sets one back to its default; the next deployment applies them")
    .argument("<project/env/service>");
  for (const setting of settings) {
    const kinds = Object.keys(setting.to)
      .map((kind) => kind.toLowerCase())
      .join(", ");
    const option = new Option(setting.flags, `${setting.description} (${kinds})`);
    if (setting.parse) option.argParser(setting.parse);
    if (setting.choices) option.choices(setting.choices);
    command.addOption(option);
  }
  command
    .option("--git-token-stdin", "read a new token for the https repository from standard input (kept as a secret)")
    .option("--git-user <name>", "with --git-token-stdin: the user the token goes with (default x-access-token)")
    .option("--git-ssh-key-file <file>", "a new deploy key for the ssh repository: its private key file (- reads standard input)")
    .option("--registry-user <name>", "container: the registry user, with --registry-password-stdin")
    .option("--registry-password-stdin", "container: read the registry's password from standard input (kept as a secret)")
    .option(
      "--unset <setting>",
      "set an optional setting back to its default or to detection (repeatable): an option's name such as start or memory, or git-credentials, registry-credentials",
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
    )
    .option("--no-check", "save a changed repository or branch without checking it")
    .option("--json", "print the API object")
    .action(async (pathText: string, options: UpdateOptions) => {
      const api = await ctx.api();
      const { serviceId } = await resolveService(api, pathText);
      const current = await api.get<Service>(`/services/${serviceId}`);
      const { config, changed } = await updateBody(ctx, current, options);
      const updated = await api.patch<Service>(`/services/${serviceId}`, { config, ...(options.check === false ? { checkRepository: false } : {}) });
      if (options.json) return ctx.printJson(updated);
      ctx.print(`Updated ${changed.join(", ")} of ${pathText}: the next deployment applies it (slipway deploy ${pathText})`);
    });
}
