import { nodeRequest, type NodeRequest, parseNodeSpec } from "./toolchains/node";
import { detectPythonPlan, type GeneratedFile, PYTHON, isPythonApp, type PythonFacts, type PythonRequest } from "./plans/python";
import { installArgv, packageManagerRequest, type PackageManagerRequest, scriptArgv } from "./toolchains/package-managers";

/**
 * Build plan detection: from what a repository contains, decide how to install, build and start
 * it (Heroku-style buildpack detection, reduced to Node, Python, static sites and Procfiles).
 * Pure: the runtime gathers the facts, this decides; unit tested in build-plan.test.ts.
 */

/** What detection looks at, read from the app's root directory (rootDirectory inside the repo). */
export type RepoFacts = {
  /** File names at the app root. */
  files: ReadonlySet<string>;
  /** As parsed, unchecked: engines and volta are read with care (toolchains/node.ts). */
  packageJson: { scripts?: Record<string, string>; main?: string; engines?: unknown; volta?: unknown; packageManager?: unknown } | null;
  procfile: string | null;
  requirementsTxt: string | null;
  /** The Node version files nvm and nodenv (and most version managers) read. */
  nvmrc: string | null;
  nodeVersionFile: string | null;
  /** pnpm-lock.yaml, whose lockfileVersion says which pnpm reads it (toolchains/package-managers.ts). */
  pnpmLock: string | null;
  /** What Python detection reads beyond requirements.txt (plans/python.ts); absent: none of it is there. */
  python?: Omit<PythonFacts, "files" | "requirementsTxt">;
};

export type PlanCommand = { argv: string[]; display: string };
/** A step of the build, named as errors name it: the install (dependencies) or the build. */
export type PlanStep = PlanCommand & { step: "install" | "build" };
export type StartPlan = ({ type: "command" } & PlanCommand) | { type: "static"; display: string };
export type BuildPlan = {
  kind: "node" | "python" | "static" | "procfile" | "custom";
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
/** The service's own settings, each winning over detection: the install, build and start commands, the Node version (a semver range) and the Python version. */
export type Overrides = { installCommand?: string; buildCommand?: string; startCommand?: string; nodeVersion?: string; pythonVersion?: string };

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

export function detectBuildPlan(facts: RepoFacts, overrides: Overrides = {}): { ok: true; plan: BuildPlan } | { ok: false; reason: string } {
  // The service's nodeVersion wins over the repository's files, as a semver range (checked by the API too).
  const stated = overrides.nodeVersion ? parseNodeSpec(overrides.nodeVersion, "the service's nodeVersion") : nodeRequest(facts);
  if (!stated.ok) return stated;
  const node = facts.packageJson || stated.request ? { stated: stated.request } : null;
  const web = facts.procfile === null ? null : procfileWebCommand(facts.procfile);
  const userStart = overrides.startCommand ? shellCommand(overrides.startCommand) : web ? shellCommand(web) : null;
  const userBuild = overrides.buildCommand ? [build(shellCommand(overrides.buildCommand))] : null;
  const userInstall = overrides.installCommand ? shellCommand(overrides.installCommand) : null;

  if (facts.packageJson) {
    const manager = packageManagerRequest(facts);
    if (!manager.ok) return manager;
    const { flavor } = manager.value;
    const run = (script: string) => {
      const [command, ...args] = scriptArgv(flavor, script);
      return argv(command!, ...args);
    };
    const [command, ...args] = installArgv(manager.value);
    const scripts = facts.packageJson.scripts ?? {};
    const builds = userBuild ?? (scripts.build ? [build(run("build"))] : []);
    const start = userStart ?? (scripts.start ? run("start") : argv("node", facts.packageJson.main ?? "index.js"));
    return {
      ok: true,
      plan: {
        kind: "node",
        steps: [install(userInstall ?? argv(command!, ...args)), ...builds],
        start: { type: "command", ...start },
        pathPrefix: ["node_modules/.bin"],
        node,
        packageManager: manager.value,
      },
    };
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
        steps: [...installs.map(install), ...(userBuild ?? [])],
        start: { type: "command", ...start },
        pathPrefix: [".venv/bin"],
        node,
        packageManager: null,
        python: { version: python.version, generated: userInstall ? [] : python.generated, decisions },
      },
    };
  }

  if (userStart) {
    return {
      ok: true,
      plan: {
        kind: overrides.startCommand ? "custom" : "procfile",
        steps: [...(userInstall ? [install(userInstall)] : []), ...(userBuild ?? [])],
        start: { type: "command", ...userStart },
        pathPrefix: [],
        node,
        packageManager: null,
      },
    };
  }

  if (facts.files.has("index.html")) {
    return {
      ok: true,
      plan: {
        kind: "static",
        steps: [...(userInstall ? [install(userInstall)] : []), ...(userBuild ?? [])],
        start: { type: "static", display: "static file server" },
        pathPrefix: [],
        node,
        packageManager: null,
      },
    };
  }

  return {
    ok: false,
    reason: "could not detect how to build this app: no package.json, requirements.txt, Procfile or index.html at its root; set a start command",
  };
}
