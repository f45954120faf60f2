import fsp from "node:fs/promises";
import path from "node:path";
import type { BuildPlan } from "../build-plan";
import { readRepoFile } from "../service-plan";
import { ROOT_INSTALL_SCRIPTS } from "../toolchains/package-managers";

/**
 * Which files of the app the install reads, so that the image copies them, installs, and only
 * then copies the rest of the source (issue 14, item 4 on the docker runtime): the install's
 * layer is then reused by every commit that leaves them as they are, as the local runtime's
 * build cache reuses node_modules. When the install may read anything else (a user's install
 * command, an install script of the app, a local dependency, a workspace, `pip install .`), the
 * whole source goes in first, as before: a layer keyed by too few files would install stale
 * dependencies.
 */
export type InstallLayer = { files: string[]; line: string } | { files: null; line: string };

/** The files each package manager's install reads beside package.json, when the app has them (its lockfile, its settings, yarn berry's own directory). */
const NODE_INSTALL_FILES = {
  npm: ["package-lock.json", "npm-shrinkwrap.json", ".npmrc"],
  "yarn-classic": ["yarn.lock", ".yarnrc", ".npmrc"],
  // .yarn holds what .yarnrc.yml may point at: plugins, patches, a release, an offline cache.
  "yarn-berry": ["yarn.lock", ".yarnrc.yml", ".yarn", ".npmrc"],
  pnpm: ["pnpm-lock.yaml", ".npmrc", ".pnpmfile.cjs"],
} as const;

/** Version specifiers of a dependency that is a path of the app's repository, which the install reads. */
const LOCAL_SPECIFIER = /^(file:|link:|portal:|workspace:|\.{0,2}\/|~\/)/;

/** pip options of a requirements file that name no file of the app (any other option may: -r, -c, -e, --find-links). */
const PIP_OPTIONS_WITHOUT_FILES =
  /^(-i|--index-url|--extra-index-url|--trusted-host|--hash|--pre|--prefer-binary|--only-binary|--no-binary|--require-hashes)\b/;

const wholeSource = (why: string): InstallLayer => ({
  files: null,
  line: `Image layers: the whole source goes in before the install (${why}), so each commit installs again`,
});

/**
 * The install layer of a plan in `appDir` (a real path inside `checkout`): the files its install
 * reads, relative to the app, or why it reads the whole source.
 */
export async function installLayer(plan: BuildPlan, checkout: string, appDir: string, installOverridden: boolean): Promise<InstallLayer> {
  const installs = plan.steps.filter((step) => step.step === "install");
  if (installs.length === 0) return { files: [], line: "Image layers: nothing to install" };
  if (installOverridden) return wholeSource("the service's own install command may read any file");
  // A workspace app installs at the repository's root, from every workspace package's manifest.
  if (installs.some((step) => step.cwd)) return wholeSource("a workspace app installs every package of the workspace");
  if (!plan.steps.slice(0, installs.length).every((step) => step.step === "install")) return wholeSource("a build step comes before the install");
  const appPath = path.relative(await fsp.realpath(checkout), appDir);
  const exists = async (name: string) => {
    const stat = await fsp.lstat(path.join(appDir, name)).catch(() => null);
    // A link in the repository could point anywhere: it keeps the old order.
    if (stat?.isSymbolicLink()) throw new NotPlain(name);
    return stat !== null;
  };
  try {
    const files = plan.packageManager
      ? await nodeFiles(plan.packageManager.flavor, appPath, checkout, exists)
      : await pythonFiles(
          installs.flatMap((step) => step.argv),
          appPath,
          checkout,
          exists,
        );
    if (typeof files === "string") return wholeSource(files);
    return {
      files,
      line: `Image layers: dependencies installed from ${files.join(", ") || "no file of the app"} before the rest of the source goes in: a commit that changes none of them reuses the install`,
    };
  } catch (error) {
    if (error instanceof NotPlain) return wholeSource(`${error.message} is a symbolic link`);
    throw error;
  }
}

class NotPlain extends Error {}

type Exists = (name: string) => Promise<boolean>;

/** package.json, then the package manager's files the app has; or why the install reads more. */
async function nodeFiles(flavor: keyof typeof NODE_INSTALL_FILES, appPath: string, checkout: string, exists: Exists): Promise<string[] | string> {
  if (!(await exists("package.json"))) return "the app has no package.json";
  if (await exists("pnpm-workspace.yaml")) return "pnpm-workspace.yaml makes the app a workspace";
  const manifest = JSON.parse(await readRepoFile(checkout, path.join(appPath, "package.json"))) as Record<string, unknown>;
  if (manifest.workspaces !== undefined) return "package.json names workspaces";
  const scripts = isRecord(manifest.scripts) ? manifest.scripts : {};
  const script = ROOT_INSTALL_SCRIPTS.find((name) => scripts[name] !== undefined);
  if (script) return `package.json has a ${script} script, which the install runs`;
  for (const field of ["dependencies", "devDependencies", "optionalDependencies"]) {
    const dependencies = manifest[field];
    if (!isRecord(dependencies)) continue;
    const local = Object.entries(dependencies).find(([, spec]) => typeof spec === "string" && LOCAL_SPECIFIER.test(spec));
    if (local) return `${local[0]} in ${field} is a path of the repository (${String(local[1])})`;
  }
  const files = ["package.json"];
  for (const name of NODE_INSTALL_FILES[flavor]) if (await exists(name)) files.push(name);
  return files;
}

/**
 * The requirements files pip installs from (`-r <file>`; the one the engine writes from
 * Pipfile.lock is in the app by now), each naming only packages; or why the install reads more.
 * Packages named on the command line (pyproject.toml's dependencies) are in the install's step.
 */
async function pythonFiles(argv: string[], appPath: string, checkout: string, exists: Exists): Promise<string[] | string> {
  if (argv.some((arg) => arg === "." || arg.startsWith("./"))) return "pip installs the app itself";
  const files: string[] = [];
  for (const [index, arg] of argv.entries()) {
    if (arg !== "-r") continue;
    const name = argv[index + 1]!;
    if (!(await exists(name))) return `${name} is not in the app`;
    const reads = requirementsReadFiles(await readRepoFile(checkout, path.join(appPath, name)));
    if (reads) return `${name} ${reads}`;
    files.push(name);
  }
  return files;
}

/** What in a requirements file reads a file of the app (an option naming one, a local path), or null. */
export function requirementsReadFiles(text: string): string | null {
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/(^|\s)#.*$/, "").trim();
    if (!line) continue;
    if (line.startsWith("-") && !PIP_OPTIONS_WITHOUT_FILES.test(line)) return `has ${line.split(/\s+/)[0]}, which may name a file of the app`;
    if (/^[.~/]/.test(line) || /\bfile:/.test(line)) return `names a path of the app (${line})`;
  }
  return null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
