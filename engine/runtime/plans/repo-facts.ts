import type { RepoFacts } from "../build-plan";

/**
 * Gathers the RepoFacts detection reads, from any view of a repository: the engine's checkout
 * on disk, or the control plane's shallow fetch of the branch (the plan shown before deploying).
 * One list of files read, so both see the same app.
 */
export type RepoReader = {
  /** File and directory names in a directory of the repository ("" is its root); [] when it is absent. */
  list(dir: string): Promise<string[]>;
  /** A file's text (path relative to the repository root), or null when it is absent. */
  read(file: string): Promise<string | null>;
};

/** Framework config files whose content detection reads (output directories, standalone and export builds). */
export const FRAMEWORK_CONFIG_FILES = [
  "angular.json",
  "next.config.js",
  "next.config.mjs",
  "next.config.cjs",
  "next.config.ts",
  "vite.config.js",
  "vite.config.mjs",
  "vite.config.cjs",
  "vite.config.ts",
  "vite.config.mts",
  "astro.config.mjs",
  "astro.config.js",
  "astro.config.ts",
];

/** Python entry files, read for their app object (plans/python.ts). */
const PYTHON_SOURCES = ["app.py", "main.py", "wsgi.py", "asgi.py", "manage.py"];

export async function gatherRepoFacts(reader: RepoReader, appPath: string): Promise<{ ok: true; facts: RepoFacts } | { ok: false; reason: string }> {
  const app = await directoryFacts(reader, appPath);
  if (!app.ok) return app;
  const configs: Record<string, string> = {};
  for (const name of FRAMEWORK_CONFIG_FILES) {
    if (!app.files.has(name)) continue;
    const text = await reader.read(join(appPath, name));
    if (text !== null) configs[name] = text;
  }
  let repositoryRoot: RepoFacts["repositoryRoot"] = null;
  if (appPath !== "") {
    // A workspace app installs from the repository root, where its lockfile is (plans/workspaces.ts).
    const root = await directoryFacts(reader, "");
    if (!root.ok) return root;
    repositoryRoot = {
      appPath,
      files: root.files,
      packageJson: root.packageJson,
      pnpmWorkspace: root.files.has("pnpm-workspace.yaml") ? await reader.read("pnpm-workspace.yaml") : null,
      nvmrc: root.nvmrc,
      nodeVersionFile: root.nodeVersionFile,
      pnpmLock: root.facts.pnpmLock,
    };
  }
  return { ok: true, facts: { ...app.facts, configs, repositoryRoot } };
}

async function directoryFacts(reader: RepoReader, dir: string) {
  const files = new Set(await reader.list(dir));
  const read = async (name: string) => (files.has(name) ? await reader.read(join(dir, name)) : null);
  const packageText = await read("package.json");
  let packageJson: RepoFacts["packageJson"] = null;
  if (packageText !== null) {
    try {
      packageJson = JSON.parse(packageText) as RepoFacts["packageJson"];
    } catch (error) {
      return { ok: false as const, reason: `${join(dir, "package.json")} is not valid JSON: ${(error as Error).message}` };
    }
    if (typeof packageJson !== "object" || packageJson === null || Array.isArray(packageJson))
      return { ok: false as const, reason: `${join(dir, "package.json")} is not a JSON object` };
  }
  const nvmrc = await read(".nvmrc");
  const nodeVersionFile = await read(".node-version");
  return {
    ok: true as const,
    files,
    packageJson,
    nvmrc,
    nodeVersionFile,
    facts: {
      files,
      packageJson,
      procfile: await read("Procfile"),
      requirementsTxt: await read("requirements.txt"),
      nvmrc,
      nodeVersionFile,
      pnpmLock: await read("pnpm-lock.yaml"),
      python: {
        pyprojectToml: await read("pyproject.toml"),
        pipfileLock: await read("Pipfile.lock"),
        pythonVersionFile: await read(".python-version"),
        runtimeTxt: await read("runtime.txt"),
        // The entry files whose app object detection looks for (read as text, never run).
        sources: Object.fromEntries(
          (await Promise.all(PYTHON_SOURCES.map(async (name) => [name, await read(name)] as const))).filter(
            (entry): entry is readonly [string, string] => entry[1] !== null,
          ),
        ),
      },
    },
  };
}

function join(dir: string, name: string): string {
  return dir === "" ? name : `${dir.replace(/\/+$/, "")}/${name}`;
}
