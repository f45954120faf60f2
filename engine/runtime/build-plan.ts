import type { ApplicationConfig, JobConfig } from "../protocol";
import { nodeRequest, type NodeRequest, parseNodeSpec } from "./toolchains/node";
import { detectPythonPlan, type GeneratedFile, PYTHON, isPythonApp, type PythonFacts, type PythonRequest } from "./plans/python";
import { installArgv, packageManagerRequest, type PackageManagerRequest, scriptArgv } from "./toolchains/package-managers";
import { detectNodeServer } from "./plans/node-frameworks";
import { script } from "./plans/package-facts";
import { detectStaticSite } from "./plans/static-sites";
import { workspaceOf } from "./plans/workspaces";

/**
 * Build plan detection: from what a repository contains, decide how to install, build and start
 * it (Heroku-style buildpack detection, reduced to Node, Python, static sites and Procfiles).
 * Pure: the runtime gathers the facts (plans/repo-facts.ts), this decides; unit tested in
 * build-plan.test.ts. The control plane runs it too, to show the plan before a deployment.
 */

/** package.json as parsed, unchecked: each field is read with care. */
export type PackageJson = {
  name?: unknown;
  scripts?: Record<string, string>;
  main?: string;
  engines?: unknown;
  volta?: unknown;
  dependencies?: unknown;
  devDependencies?: unknown;
  workspaces?: unknown;
  packageManager?: unknown;
};

/** What detection looks at, read from the app's root directory (rootDirectory inside the repo). */
export type RepoFacts = {
  /** File names at the app root. */
  files: ReadonlySet<string>;
  /** As parsed, unchecked: engines and volta are read with care (toolchains/node.ts). */
  packageJson: PackageJson | null;
  procfile: string | null;
  requirementsTxt: string | null;
  /** The Node version files nvm and nodenv (and most version managers) read. */
  nvmrc: string | null;
  nodeVersionFile: string | null;
  /** pnpm-lock.yaml, whose lockfileVersion says which pnpm reads it (toolchains/package-managers.ts). */
  pnpmLock: string | null;
  /** Framework config files at the app root, by name (plans/repo-facts.ts's FRAMEWORK_CONFIG_FILES). */
  configs?: Readonly<Record<string, string>>;
  /** The repository's root, when the app is in a subdirectory of it: a workspace app installs there. */
  repositoryRoot?: {
    appPath: string;
    files: ReadonlySet<string>;
    packageJson: PackageJson | null;
    pnpmWorkspace: string | null;
    nvmrc: string | null;
    nodeVersionFile: string | null;
    pnpmLock: string | null;
  } | null;
  /** What Python detection reads beyond requirements.txt (plans/python.ts); absent: none of it is there. */
  python?: Omit<PythonFacts, "files" | "requirementsTxt">;
};

/** A command; `cwd` is relative to the app's directory (a workspace app installs at the repository root). */
export type PlanCommand = { argv: string[]; display: string; cwd?: string };
/** A step of the build, named as errors name it: the install (dependencies) or the build. */
export type PlanStep = PlanCommand & { step: "install" | "build" };
export type StartPlan =
  | ({ type: "command" } & PlanCommand)
  /** The engine's static server over `directory` (relative to the app); `spa`: unknown paths answer index.html. */
  | { type: "static"; directory: string; spa: boolean; display: string };
export type BuildPlan = {
  kind: "node" | "python" | "static" | "procfile" | "custom";
  /** What was detected, as users name it: "Vite SPA", "Next.js", "Express", "Python". */
  framework: string;
  /** Why, one reason a line: shown in the build log and the plan. */
  reasons: string[];
  /** Install and build commands, run in order in the app directory. */
  steps: PlanStep[];
  start: StartPlan;
  /** Directories (relative to the app) put first on PATH for build and start, e.g. a virtualenv. */
  pathPrefix: string[];
  /**
   * Whether the app runs on Node (it has a package.json, or names a Node version), and the
   * version it names (null: none, the engine's default applies); the runtime provides that Node.
   */
  node: { stated: NodeRequest | null } | null;
  /** The package manager of a Node app (the runtime provides it beside Node). */
  packageManager: PackageManagerRequest | null;
  /**
   * A Python app's interpreter request (null: the host's python3; the runtime substitutes it for
   * `python3` in the steps), the files written before its install, and each decision with its reason.
   */
  python?: { version: PythonRequest | null; generated: GeneratedFile[]; decisions: string[] };
};
/** The service's own settings, each winning over detection. */
export type Overrides = {
  installCommand?: string;
  buildCommand?: string;
  startCommand?: string;
  /** A semver range, over the repository's files and the engine's default. */
  nodeVersion?: string;
  /** A version such as 3.11, over .python-version and runtime.txt. */
  pythonVersion?: string;
  /** Serve this directory (relative to the app) as a static site, whatever was detected. */
  outputDirectory?: string;
};

/**
 * The service's settings that win over detection, from its configuration: one list, read by the
 * runtimes that build (service-plan.ts) and by the control plane that shows the plan before a
 * deployment. A JOB's command is what its release runs, as a start command is an application's.
 */
export function planOverrides(service: { kind: "APPLICATION"; config: ApplicationConfig } | { kind: "JOB"; config: JobConfig }): Overrides {
  const { config } = service;
  return {
    installCommand: config.installCommand,
    buildCommand: config.buildCommand,
    startCommand: service.kind === "JOB" ? service.config.command : service.config.startCommand,
    nodeVersion: config.nodeVersion,
    pythonVersion: config.pythonVersion,
    outputDirectory: service.kind === "APPLICATION" ? service.config.outputDirectory : undefined,
  };
}

/** User commands are shell commands by nature (as on Heroku): one argv element, never concatenated. */
export function shellCommand(command: string): PlanCommand {
  return { argv: ["/bin/sh", "-c", command], display: command };
}

function argv(...parts: string[]): PlanCommand {
  return { argv: parts, display: parts.join(" ") };
}

/** The `web:` process of a Procfile (https://devcenter.heroku.com/articles/procfile). */
export function procfileWebCommand(procfile: string): string | null {
  for (const line of procfile.split(/\r?\n/)) {
    const match = /^web:\s*(.+)$/.exec(line.trim());
    if (match?.[1]) return match[1].trim();
  }
  return null;
}

function install(command: PlanCommand): PlanStep {
  return { ...command, step: "install" };
}

function build(command: PlanCommand): PlanStep {
  return { ...command, step: "build" };
}

function staticStart(directory: string, spa: boolean): StartPlan {
  const dir = directory === "." ? "the app's files" : `${directory.replace(/\/+$/, "")}/`;
  return { type: "static", directory, spa, display: `serve ${dir}${spa ? " with SPA fallback to index.html" : ""}` };
}

/** The Node version the app states, else the one its repository root states (a monorepo's .nvmrc). */
function statedNode(facts: RepoFacts) {
  const own = nodeRequest(facts);
  if (!own.ok || own.request || !facts.repositoryRoot) return own;
  return nodeRequest(facts.repositoryRoot);
}

export function detectBuildPlan(facts: RepoFacts, overrides: Overrides = {}): { ok: true; plan: BuildPlan } | { ok: false; reason: string } {
  // The service's nodeVersion wins over the repository's files, as a semver range (checked by the API too).
  const stated = overrides.nodeVersion ? parseNodeSpec(overrides.nodeVersion, "the service's nodeVersion") : statedNode(facts);
  if (!stated.ok) return stated;
  const node = facts.packageJson || stated.request ? { stated: stated.request } : null;
  const web = facts.procfile === null ? null : procfileWebCommand(facts.procfile);
  const userStart = overrides.startCommand ? shellCommand(overrides.startCommand) : web ? shellCommand(web) : null;
  const startReason = overrides.startCommand ? "the service's start command" : web ? "the Procfile's web process" : null;
  const userBuild = overrides.buildCommand ? [build(shellCommand(overrides.buildCommand))] : null;
  const userInstall = overrides.installCommand ? shellCommand(overrides.installCommand) : null;
  const outputDirectory = overrides.outputDirectory || null;
  const outputReason = `the service's output directory ${outputDirectory}`;

  if (facts.packageJson) {
    const found = workspaceOf(facts);
    if (!found.ok) return found;
    const workspace = found.workspace;
    // A workspace app's package manager is the repository root's: its lockfile and packageManager field are there.
    const manager = packageManagerRequest(workspace && facts.repositoryRoot ? facts.repositoryRoot : facts);
    if (!manager.ok) return manager;
    const run = (name: string) => argv(...scriptArgv(manager.value.flavor, name));
    const installCommand = userInstall ?? argv(...installArgv(manager.value));
    const installStep = install(workspace ? { ...installCommand, cwd: workspace.root } : installCommand);
    const builds = userBuild ?? (script(facts.packageJson, "build") ? [build(workspace ? workspace.run("build") : run("build"))] : []);
    const pathPrefix = ["node_modules/.bin", ...(workspace ? [`${workspace.root}/node_modules/.bin`] : [])];
    const reasons = [...(workspace ? [workspace.because] : [])];
    const nodePlan = (framework: string, start: StartPlan, extra: PlanCommand[] = []): { ok: true; plan: BuildPlan } => ({
      ok: true,
      plan: {
        kind: start.type === "static" ? "static" : "node",
        framework,
        reasons,
        steps: [installStep, ...builds, ...extra.map(build)],
        start,
        pathPrefix,
        node,
        packageManager: manager.value,
      },
    });

    // In order: the service's start command, its output directory, the Procfile, detection.
    const site = detectStaticSite(facts);
    if (userStart && startReason && (overrides.startCommand || !outputDirectory)) {
      reasons.push(startReason);
      return nodePlan(site?.framework ?? "Node", { type: "command", ...userStart });
    }
    if (outputDirectory) {
      // The framework's SPA fallback stays: only where its files are was set.
      reasons.push(...(site?.because ?? []), outputReason);
      return nodePlan(site?.framework ?? "static site", staticStart(outputDirectory, site?.spa ?? false));
    }
    if (site) {
      reasons.push(...site.because);
      return nodePlan(site.framework, staticStart(site.outputDirectory, site.spa));
    }
    const server = detectNodeServer(facts, run);
    if (!server.ok) return server;
    reasons.push(server.server.because);
    return nodePlan(server.server.framework, { type: "command", ...server.server.start }, server.server.afterBuild);
  }

  const pythonFacts: PythonFacts = {
    files: facts.files,
    requirementsTxt: facts.requirementsTxt,
    pyprojectToml: null,
    pipfileLock: null,
    pythonVersionFile: null,
    runtimeTxt: null,
    sources: {},
    ...facts.python,
  };
  if (isPythonApp(pythonFacts)) {
    // A Procfile or start command of the user's wins: the entry files are not read for one (a Django app without gunicorn is fine then).
    const detected = detectPythonPlan(userStart ? { ...pythonFacts, sources: {} } : pythonFacts, overrides.pythonVersion);
    if (!detected.ok) return detected;
    const python = detected.value;
    const start = userStart ?? python.start;
    if (!start) return { ok: false, reason: "Python app without a start: add a Procfile web line, app.py or main.py, or set a start command" };
    const decisions = python.decisions.map((decision) =>
      decision.startsWith("Start:") && userStart
        ? `Start: ${userStart.display} (${overrides.startCommand ? "the service's start command" : "the Procfile's web process"})`
        : decision,
    );
    // An install command of the service's replaces pip's, in the virtualenv the start runs in.
    const installs = userInstall ? [argv(PYTHON, "-m", "venv", ".venv"), userInstall] : python.installs;
    return {
      ok: true,
      plan: {
        kind: "python",
        framework: python.framework,
        reasons: decisions,
        steps: [...installs.map(install), ...(userBuild ?? [])],
        start: { type: "command", ...start },
        pathPrefix: [".venv/bin"],
        node,
        packageManager: null,
        python: { version: python.version, generated: userInstall ? [] : python.generated, decisions },
      },
    };
  }

  // Neither Node nor Python: the service's own install and build, then its start or a static server.
  const plain = (kind: BuildPlan["kind"], framework: string, reason: string, start: StartPlan): { ok: true; plan: BuildPlan } => ({
    ok: true,
    plan: {
      kind,
      framework,
      reasons: [reason],
      steps: [...(userInstall ? [install(userInstall)] : []), ...(userBuild ?? [])],
      start,
      pathPrefix: [],
      node,
      packageManager: null,
    },
  });
  if (overrides.startCommand && userStart) return plain("custom", "custom", startReason ?? "", { type: "command", ...userStart });
  if (outputDirectory) return plain("static", "static site", outputReason, staticStart(outputDirectory, false));
  if (userStart) return plain("procfile", "Procfile", startReason ?? "", { type: "command", ...userStart });
  if (facts.files.has("index.html")) return plain("static", "static HTML", "index.html at the app's root, no package.json", staticStart(".", false));

  return {
    ok: false,
    reason: "could not detect how to build this app: no package.json, requirements.txt, Procfile or index.html at its root; set a start command",
  };
}

/** A step as the log shows it: where it runs when that is not the app's directory. */
export function stepText(step: PlanCommand): string {
  return step.cwd ? `${step.display} (at the repository root)` : step.display;
}

/** The plan in a few lines, as the build log and `slipway service plan` show it. */
export function describePlan(plan: BuildPlan): string {
  const build = plan.steps.length > 0 ? plan.steps.map((step) => `\`${stepText(step)}\``).join(", then ") : "nothing to build";
  const start = plan.start.type === "static" ? plan.start.display : `start \`${plan.start.display}\``;
  const because = plan.reasons.filter(Boolean).join("; ");
  return `detected ${plan.framework}: ${build}; ${start}${because ? ` (because ${because})` : ""}`;
}
