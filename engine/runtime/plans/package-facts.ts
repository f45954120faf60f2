import type { PackageJson } from "../build-plan";

/** Whether package.json depends on `name`, for the build or at run time. */
export function dependsOn(pkg: PackageJson | null, name: string): boolean {
  const has = (deps: unknown) => typeof deps === "object" && deps !== null && Object.hasOwn(deps, name);
  return has(pkg?.dependencies) || has(pkg?.devDependencies);
}

/** A script of package.json, when it is a non-empty string. */
export function script(pkg: PackageJson | null, name: string): string | null {
  const value = (pkg?.scripts as Record<string, unknown> | undefined)?.[name];
  return typeof value === "string" && value.trim() !== "" ? value : null;
}

/**
 * Development servers a `start` script may run (Create React App's, Vite's, Angular's, ...): they
 * rebuild on every change, hold the whole toolchain in memory and are slow, so a production
 * release never runs one (issue 14: a CRA site ran webpack's dev server at 700 MiB).
 */
const DEV_SERVERS = [
  /\breact-scripts\s+start\b/,
  // `vite`, `vite dev`, `vite serve`, `vite preview` ("not designed for production", Vite's docs); not `vite build`.
  /(^|[\s;&|(])vite(?!\s+build\b)(\s|$)/,
  /\bng\s+serve\b/,
  /\bnext\s+dev\b/,
  /\bnux[ti]\s+dev\b/,
  /\bgatsby\s+develop\b/,
  /\bastro\s+dev\b/,
  /\bremix\s+dev\b/,
  /\bwebpack(-dev-server|\s+serve)\b/,
  /\bvue-cli-service\s+serve\b/,
];

export function runsDevServer(command: string): boolean {
  return DEV_SERVERS.some((pattern) => pattern.test(command));
}

/** The text of the first of `names` in the app's framework configs (plans/repo-facts.ts), with its name. */
export function configText(configs: Readonly<Record<string, string>> | undefined, names: readonly string[]): { name: string; text: string } | null {
  for (const name of names) {
    const text = configs?.[name];
    if (text !== undefined) return { name, text };
  }
  return null;
}

/** A string property set literally in a config file (`output: 'standalone'`); null when it is not readable without running it. */
export function literalProperty(text: string, key: string): string | null {
  const match = new RegExp(`(?:^|[\\s{,])${key}\\s*:\\s*(['"\`])([^'"\`]+)\\1`).exec(stripComments(text));
  return match?.[2] ?? null;
}

function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:\\])\/\/.*$/gm, "$1");
}
