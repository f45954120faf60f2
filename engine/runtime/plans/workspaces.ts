import path from "node:path";
import picomatch from "picomatch";
import YAML from "yaml";
import type { PlanCommand, RepoFacts } from "../build-plan";

/**
 * Monorepos: an app whose directory (the service's root directory) is a package of an npm, yarn
 * or pnpm workspace installs from the repository root, where the lockfile is, and builds only its
 * own package (npm --workspace, yarn workspace, pnpm --filter), as Railpack and Render do.
 */
export type Workspace = {
  manager: "npm" | "yarn" | "pnpm";
  /** From the app's directory to the repository root ("../.."). */
  root: string;
  because: string;
  run(scriptName: string): PlanCommand;
};

export function workspaceOf(facts: RepoFacts): { ok: true; workspace: Workspace | null } | { ok: false; reason: string } {
  const repo = facts.repositoryRoot;
  if (!repo || !facts.packageJson) return { ok: true, workspace: null };
  const declared = repo.pnpmWorkspace !== null ? pnpmPatterns(repo.pnpmWorkspace) : packageJsonPatterns(repo.packageJson?.workspaces);
  if (!declared.ok) return declared;
  const appPath = repo.appPath.replace(/^\.\/|\/+$/g, "");
  const positive = declared.patterns.filter((pattern) => !pattern.startsWith("!")).map(clean);
  const negative = declared.patterns.filter((pattern) => pattern.startsWith("!")).map((pattern) => clean(pattern.slice(1)));
  if (!picomatch.isMatch(appPath, positive) || (negative.length > 0 && picomatch.isMatch(appPath, negative))) return { ok: true, workspace: null };

  const manager = repo.files.has("pnpm-lock.yaml") || repo.pnpmWorkspace !== null ? "pnpm" : repo.files.has("yarn.lock") ? "yarn" : "npm";
  const name = typeof facts.packageJson.name === "string" ? facts.packageJson.name : null;
  if (manager === "yarn" && !name) return { ok: false, reason: `the workspace package ${appPath} has no name in its package.json: yarn workspace needs one` };
  const root = path.posix.relative(appPath, "") || ".";
  const where = repo.pnpmWorkspace !== null ? "pnpm-workspace.yaml" : "the root package.json's workspaces";
  const run = (scriptName: string): PlanCommand => {
    const argv =
      manager === "pnpm"
        ? ["pnpm", "--filter", `./${appPath}`, "run", scriptName]
        : manager === "yarn"
          ? ["yarn", "workspace", name ?? "", "run", scriptName]
          : ["npm", "run", scriptName, `--workspace=${appPath}`];
    return { argv, display: argv.join(" "), cwd: root };
  };
  return { ok: true, workspace: { manager, root, because: `${appPath} is a ${manager} workspace package (${where})`, run } };
}

function clean(pattern: string): string {
  return pattern.replace(/^\.\//, "").replace(/\/+$/, "");
}

function pnpmPatterns(text: string): { ok: true; patterns: string[] } | { ok: false; reason: string } {
  let parsed: unknown;
  try {
    parsed = YAML.parse(text);
  } catch (error) {
    return { ok: false, reason: `pnpm-workspace.yaml is not valid YAML: ${(error as Error).message}` };
  }
  const packages = (parsed as { packages?: unknown } | null)?.packages;
  return { ok: true, patterns: Array.isArray(packages) ? packages.filter((item): item is string => typeof item === "string") : [] };
}

/** `workspaces` as npm and yarn write it: a list, or yarn's { packages: [...] }. */
function packageJsonPatterns(workspaces: unknown): { ok: true; patterns: string[] } {
  const list = Array.isArray(workspaces) ? workspaces : (workspaces as { packages?: unknown } | undefined)?.packages;
  return { ok: true, patterns: Array.isArray(list) ? list.filter((item): item is string => typeof item === "string") : [] };
}
