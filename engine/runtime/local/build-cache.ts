import { createHash } from "node:crypto";
import { execFile } from "node:child_process";
import fsp from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { z } from "zod";
import { type PackageManagerFlavor, ROOT_INSTALL_SCRIPTS } from "../toolchains/package-managers";
import { readJson, writeJsonAtomic } from "../shared/files";
import type { ServiceUser } from "./sandbox/service-users";

const execFileAsync = promisify(execFile);

/**
 * The build cache of a service on the local runtime (issue 14, item 4): its package manager's
 * download cache and its framework's build caches, kept between its builds under its own
 * directory (removed with it, never shared: a cache may hold what its secrets fetched).
 * One entry per service, keyed by its lockfiles, toolchains and plan kind: a changed one starts
 * fresh and the old entry goes. An entry over the size limit after a build is dropped whole
 * (simple and correct: the next build is cold, as after a lockfile change). The entry also keeps
 * what the install wrote (installOutputs: node_modules, and yarn berry's cache and install state),
 * restored before the next install (copyInstallOutputsArgv): writing them is most of an install's
 * time, and an install that would write the same is skipped (npmTreeMatches, berryInstallSkippable).
 */

/**
 * Lockfiles (and Python's manifests, which pip installs from; yarn berry's settings, which say how
 * it links) of the install's directory: a change starts a fresh cache.
 */
const LOCKFILES = [
  "package-lock.json",
  "npm-shrinkwrap.json",
  "yarn.lock",
  ".yarnrc.yml",
  "pnpm-lock.yaml",
  "requirements.txt",
  "Pipfile.lock",
  "pyproject.toml",
];

/**
 * What an install writes into the app, kept in the entry and restored before the next install:
 * node_modules; for yarn berry also its cache of package zips (in the app: berryEnv), what it
 * unplugged, its install state (which `yarn run` needs) and its Plug'n'Play loader. Each is
 * restored where the app does not have it already (a repository may commit .yarn/cache).
 */
export function installOutputs(flavor: PackageManagerFlavor): string[] {
  if (flavor !== "yarn-berry") return ["node_modules"];
  return ["node_modules", ".yarn/cache", ".yarn/unplugged", ".yarn/install-state.gz", ".pnp.cjs", ".pnp.loader.mjs"];
}

/**
 * Yarn berry's cache of package zips in the app's .yarn/cache rather than in the service's home
 * (its default, enableGlobalCache): the release's Plug'n'Play loads its packages from there, so
 * each release has its own, and the build cache keeps it with the rest of the install. The
 * app's own setting of it wins (a variable; .yarnrc.yml's is under the environment's).
 */
export function berryEnv(variables: Record<string, string>): Record<string, string> {
  return variables.YARN_ENABLE_GLOBAL_CACHE === undefined ? { YARN_ENABLE_GLOBAL_CACHE: "false" } : {};
}

/** package.json's fields a yarn berry install reads besides yarn.lock: a change starts a fresh cache (it would be an install yarn must do, or refuse). */
const BERRY_MANIFEST_FIELDS = [
  "dependencies",
  "devDependencies",
  "optionalDependencies",
  "peerDependencies",
  "peerDependenciesMeta",
  "dependenciesMeta",
  "resolutions",
  "workspaces",
];

/** The part of the key a yarn berry app's package.json makes (BERRY_MANIFEST_FIELDS), by name beside the lockfiles. */
export function berryManifestPart(packageJson: string): Record<string, string> {
  let manifest: Record<string, unknown> = {};
  try {
    manifest = z.record(z.string(), z.unknown()).parse(JSON.parse(packageJson));
  } catch {
    // Unreadable: keyed by its text, and yarn says what is wrong with it.
    return { "package.json": packageJson };
  }
  return { "package.json (dependencies)": JSON.stringify(BERRY_MANIFEST_FIELDS.map((field) => manifest[field] ?? null)) };
}

/**
 * Whether a yarn berry install can be skipped: its install state came back from an entry keyed by
 * the same yarn.lock, .yarnrc.yml, package.json dependencies and yarn (so the install would write
 * what was restored), and the root package has no install script for it to run.
 */
export function berryInstallSkippable(packageJson: string, restored: string[]): boolean {
  if (!restored.includes(".yarn/install-state.gz")) return false;
  try {
    const scripts = z.object({ scripts: z.record(z.string(), z.unknown()).optional() }).parse(JSON.parse(packageJson)).scripts ?? {};
    return !ROOT_INSTALL_SCRIPTS.some((name) => scripts[name] !== undefined);
  } catch {
    return false;
  }
}

/** Framework caches inside the app, restored after its install (which empties node_modules) and saved after its build. */
export const FRAMEWORK_CACHES = [".next/cache", "node_modules/.cache", "node_modules/.vite"];

/** What a cache entry is keyed by, kept beside it so that a cold build can say what changed. */
const keyParts = z.object({ lockfiles: z.string(), toolchains: z.string(), kind: z.string(), install: z.string().default("") });
export type CacheKeyParts = z.infer<typeof keyParts>;

/** The key's parts: a digest of the lockfiles' contents (by name), the toolchains as they were provided, the plan's kind, its install command (which made the kept node_modules). */
export function cacheKeyParts(lockfiles: Record<string, string>, toolchains: string[], kind: string, install: string): CacheKeyParts {
  const digest = createHash("sha256");
  for (const name of Object.keys(lockfiles).sort()) digest.update(`${name}\0${lockfiles[name]}\0`);
  return { lockfiles: digest.digest("hex"), toolchains: toolchains.join(" "), kind, install };
}

export function cacheKey(parts: CacheKeyParts): string {
  return createHash("sha256").update(JSON.stringify(parts)).digest("hex").slice(0, 16);
}

/** The lockfiles `read` finds in the install's directory, by name (a missing one is left out). */
export async function readLockfiles(read: (name: string) => Promise<string | null>): Promise<Record<string, string>> {
  const found: Record<string, string> = {};
  for (const name of LOCKFILES) {
    const text = await read(name);
    if (text !== null) found[name] = text;
  }
  return found;
}

/** Where each tool keeps its downloads, pointed into the cache (`pm`): the app's own setting of one wins. */
export function cacheEnv(flavor: PackageManagerFlavor | null, python: boolean, pm: string, variables: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  if (flavor === "npm") env.npm_config_cache = pm;
  if (flavor === "yarn-classic") env.YARN_CACHE_FOLDER = pm;
  // Not yarn berry's: with Plug'n'Play the running app loads its packages from its cache, which is the app's (berryEnv).
  if (flavor === "pnpm") env.npm_config_store_dir = pm;
  if (python) env.PIP_CACHE_DIR = pm;
  return Object.fromEntries(Object.entries(env).filter(([key]) => variables[key] === undefined && variables[key.toUpperCase()] === undefined));
}

export type OpenedCache = {
  /** The entry's directory, writable by the build's sandbox. */
  dir: string;
  /** The package manager's cache, inside it. */
  packages: string;
  /** Copies of the framework caches, inside it (FRAMEWORK_CACHES, by the same relative paths). */
  frameworks: string;
  /** What to tell the build log. */
  line: string;
};

export class BuildCaches {
  constructor(private readonly options: { serviceDir: (serviceId: string) => string; limitBytes: number }) {}

  private root(serviceId: string): string {
    return path.join(this.options.serviceDir(serviceId), "cache");
  }

  /**
   * The entry of `parts` for the service's build, created empty when it is new or `noCache`
   * asks for a fresh one, owned by the service's user; every other entry of the service goes.
   */
  async open(serviceId: string, parts: CacheKeyParts, noCache: boolean, user: ServiceUser | null): Promise<OpenedCache> {
    const root = this.root(serviceId);
    const key = cacheKey(parts);
    const dir = path.join(root, key);
    // Passable for the service's user, not listable: it reaches its own entry only.
    await fsp.mkdir(root, { recursive: true, mode: 0o711 });
    const previous = await this.previousParts(root, key);
    const exists =
      !noCache &&
      (await fsp.stat(dir).then(
        (stat) => stat.isDirectory(),
        () => false,
      ));
    for (const entry of await fsp.readdir(root))
      if (!(exists && (entry === key || entry === `${key}.json`))) await fsp.rm(path.join(root, entry), { recursive: true, force: true });
    let line: string;
    if (exists) line = `Build cache: restored (key ${key}, ${megabytes(await sizeOf(dir))} MB)`;
    else if (noCache) line = "Build cache: skipped (--no-cache); this build's result is saved";
    else line = `Build cache: cold (${whatChanged(previous, parts)})`;
    const packages = path.join(dir, "packages");
    const frameworks = path.join(dir, "frameworks");
    for (const each of [dir, packages, frameworks]) {
      await fsp.mkdir(each, { recursive: true, mode: 0o700 });
      if (user) await fsp.chown(each, user.uid, user.gid);
    }
    await writeJsonAtomic(path.join(root, `${key}.json`), parts, 0o600);
    return { dir, packages, frameworks, line };
  }

  /** After a successful build: the entry's size, or its removal when it is over the limit. Returns what to tell the build log. */
  async settle(serviceId: string, cache: OpenedCache): Promise<string> {
    const bytes = await sizeOf(cache.dir);
    const limit = this.options.limitBytes;
    if (bytes <= limit) return `Build cache: saved (${megabytes(bytes)} MB)`;
    await fsp.rm(cache.dir, { recursive: true, force: true });
    await fsp.rm(`${cache.dir}.json`, { force: true });
    return `Build cache: dropped (${megabytes(bytes)} MB, over the limit of ${megabytes(limit)} MB set by SLIPWAY_BUILD_CACHE_MB): the next build is cold`;
  }

  /** The key parts of the service's other entry, if it has one (at most one is kept). */
  private async previousParts(root: string, key: string): Promise<CacheKeyParts | null> {
    const other = (await fsp.readdir(root)).find((entry) => entry.endsWith(".json") && entry !== `${key}.json`);
    return other ? readJson(path.join(root, other), keyParts).catch(() => null) : null;
  }
}

function whatChanged(previous: CacheKeyParts | null, parts: CacheKeyParts): string {
  if (!previous) return "no cache yet";
  const changed = [
    previous.lockfiles !== parts.lockfiles ? "lockfile changed" : null,
    previous.toolchains !== parts.toolchains ? `toolchain changed: ${parts.toolchains || "none"}, was ${previous.toolchains || "none"}` : null,
    previous.kind !== parts.kind ? "build plan changed" : null,
    previous.install !== parts.install ? "install command changed" : null,
  ].filter(Boolean);
  return changed.join(", ") || "no cache yet";
}

/** What a directory holds on disk, in bytes (`du`, which follows no link). */
async function sizeOf(dir: string): Promise<number> {
  const { stdout } = await execFileAsync("du", ["-sb", dir]);
  return Number(stdout.split("\t")[0]);
}

function megabytes(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(1);
}

/**
 * A shell script run in the build's sandbox, as the service's user (who owns both sides: the
 * engine never follows links the app made): copies each of FRAMEWORK_CACHES from `$1` to `$2`,
 * replacing what `$2` had, skipping one `$1` lacks.
 */
export function copyFrameworkCachesArgv(from: string, to: string): string[] {
  const script =
    'for rel in "$@"; do if [ -d "$SRC/$rel" ]; then rm -rf "$DST/$rel" && mkdir -p "$(dirname "$DST/$rel")" && cp -a "$SRC/$rel" "$DST/$rel" || exit 1; fi; done';
  return ["/usr/bin/env", `SRC=${from}`, `DST=${to}`, "/bin/sh", "-c", script, "copy-caches", ...FRAMEWORK_CACHES];
}

/**
 * A shell script run in the build's sandbox, as the service's user (as copyFrameworkCachesArgv):
 * copies each of `paths` (installOutputs) from `$1` to `$2` when the first has it and the second
 * does not, through a temporary name so that a copy cut short never passes for a whole one. A
 * copy, never hard links: the build and the running release may write into their node_modules.
 * Prints "copied <path>" for each it copied.
 */
export function copyInstallOutputsArgv(from: string, to: string, paths: string[]): string[] {
  const script =
    'for rel in "$@"; do [ -e "$SRC/$rel" ] && [ ! -e "$DST/$rel" ] || continue; part="$DST/$rel.partial"; rm -rf "$part" && mkdir -p "$(dirname "$DST/$rel")" && ' +
    'cp -a --reflink=auto "$SRC/$rel" "$part" && mv "$part" "$DST/$rel" && echo "copied $rel" || { rm -rf "$part"; exit 1; }; done';
  return ["/usr/bin/env", `SRC=${from}`, `DST=${to}`, "/bin/sh", "-c", script, "copy-install", ...paths];
}

/**
 * Whether a restored node_modules is what `npm ci` would install (its `.package-lock.json`, the
 * tree npm last wrote, locks every package as package-lock.json does) and `npm ci` would run
 * nothing more (no install script of the root package: ROOT_INSTALL_SCRIPTS), so that the install can be skipped.
 */
export function npmTreeMatches(packageJson: string, packageLock: string, hiddenLock: string): boolean {
  const lockShape = z.object({ packages: z.record(z.string(), z.object({ version: z.string().optional(), integrity: z.string().optional() }).passthrough()) });
  try {
    const scripts = z.object({ scripts: z.record(z.string(), z.unknown()).optional() }).parse(JSON.parse(packageJson)).scripts ?? {};
    if (ROOT_INSTALL_SCRIPTS.some((name) => scripts[name] !== undefined)) return false;
    const wanted = lockShape.parse(JSON.parse(packageLock)).packages;
    const installed = lockShape.parse(JSON.parse(hiddenLock)).packages;
    const names = Object.keys(installed);
    if (names.length === 0) return false;
    return names.every((name) => wanted[name]?.version === installed[name]!.version && wanted[name]?.integrity === installed[name]!.integrity);
  } catch {
    return false;
  }
}
