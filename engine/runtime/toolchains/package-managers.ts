import { createHash } from "node:crypto";
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import semver from "semver";
import { StepError } from "../runtime";
import type { ProvidedNode } from "./node";
import { downloadVerified, fetchPackument, type PackumentVersion, unpackPackage } from "./registry";
import type { Provision, ToolchainStore } from "./toolchain-store";

/**
 * The package manager of a Node app (issue 14): the one package.json's `packageManager` names
 * (corepack's field, https://github.com/nodejs/corepack#when-authoring-packages), else the one
 * its lockfile belongs to, else npm. npm comes with the app's Node unless pinned; yarn and pnpm,
 * and a pinned npm, are installed by the engine from the npm registry it is configured with
 * into its toolchain store (beside Node), once per version, their tarballs checked against the
 * registry's integrity and against the hash `packageManager` pins, when it pins one.
 *
 * Why not corepack, which does this for a living: it is no longer part of Node from 25 on (it
 * would be one more package to install), and against a registry other than registry.npmjs.org
 * (COREPACK_NPM_REGISTRY) it is not dependable: it verifies npm's signatures with npm's public
 * keys (a mirror's packages need COREPACK_INTEGRITY_KEYS=0, no check at all), rewrites only
 * tarball URLs on registry.npmjs.org (nodejs/corepack#792), and hashes a different file for Yarn
 * berry than the one `corepack use` pinned (nodejs/corepack#435). Its shims also decide again
 * at every run, in the release too. Installing one package from the registry is what the Node
 * toolchain already does (registry.ts), so the package managers reuse it.
 */

/** Yarn 1 (classic) and Yarn 2 and later (berry) install differently and are published as different packages. */
export type PackageManagerFlavor = "npm" | "yarn-classic" | "yarn-berry" | "pnpm";

/** The hash algorithms corepack accepts after a `+` in `packageManager` (`pnpm@9.1.0+sha512.<hex>`). */
const HASH_ALGORITHMS = ["sha1", "sha224", "sha256", "sha384", "sha512"] as const;
export type PinnedHash = { algorithm: (typeof HASH_ALGORITHMS)[number]; hex: string };

export type PackageManagerRequest = {
  flavor: PackageManagerFlavor;
  /** The releases that will do (an exact version when pinned), or null for the npm that comes with Node. */
  range: string | null;
  /** The hash `packageManager` pins, checked against what is installed. */
  hash: PinnedHash | null;
  /** Whether the app has the lockfile of its package manager (a frozen install needs one). */
  lockfile: boolean;
  /** Why this one, as the build log says it: `from packageManager "pnpm@9.15.9"`, `from yarn.lock`. */
  reason: string;
};

/**
 * The versions installed when nothing pins one: the newest release of these major versions on
 * the registry (README, "Package managers"). pnpm's follows its lockfile's version when it has one.
 */
export const DEFAULT_RANGES = { "yarn-classic": "1", "yarn-berry": "4", pnpm: "10" } as const;

/**
 * The root package's scripts an install runs (https://docs.npmjs.com/cli/using-npm/scripts#npm-ci;
 * yarn and pnpm run the same lifecycle): with one, the install may read any file of the app, so it
 * is never skipped (local/build-cache.ts) nor run before the rest of the source is in the image
 * (docker/install-layer.ts).
 */
export const ROOT_INSTALL_SCRIPTS = ["preinstall", "install", "postinstall", "prepublish", "preprepare", "prepare", "postprepare"];

/** The registry package each flavor is installed from, and the command it provides. */
const PACKAGES: Record<PackageManagerFlavor, { name: string; command: "npm" | "yarn" | "pnpm" }> = {
  npm: { name: "npm", command: "npm" },
  "yarn-classic": { name: "yarn", command: "yarn" },
  "yarn-berry": { name: "@yarnpkg/cli-dist", command: "yarn" },
  pnpm: { name: "pnpm", command: "pnpm" },
};

/** What the choice reads of a repository (engine/runtime/build-plan.ts's RepoFacts). */
export type PackageManagerFacts = {
  files: ReadonlySet<string>;
  packageJson: { packageManager?: unknown } | null;
  /** pnpm-lock.yaml, for its lockfileVersion. */
  pnpmLock: string | null;
};

type Result<T> = { ok: true; value: T } | { ok: false; reason: string };

/** `name@version` or `name@version+algorithm.hex`, as corepack writes it; a range is taken too (its newest release is installed). */
export function parsePackageManagerField(field: string): Result<{ name: string; range: string; hash: PinnedHash | null }> {
  const match = /^(@?[^@\s]+)@([^+\s]+)(?:\+([a-z0-9]+)\.([0-9a-fA-F]+))?$/.exec(field.trim());
  if (!match) return { ok: false, reason: `packageManager "${field}" in package.json is not of the form name@version (such as pnpm@9.15.9)` };
  const [, name, range, algorithm, hex] = match as unknown as [string, string, string, string | undefined, string | undefined];
  if (semver.validRange(range) === null) return { ok: false, reason: `packageManager "${field}" in package.json names no version of ${name}` };
  if (algorithm === undefined) return { ok: true, value: { name, range, hash: null } };
  if (!(HASH_ALGORITHMS as readonly string[]).includes(algorithm))
    return { ok: false, reason: `packageManager "${field}" pins a ${algorithm} hash; corepack's are ${HASH_ALGORITHMS.join(", ")}` };
  if (semver.valid(range) === null) return { ok: false, reason: `packageManager "${field}" pins a hash, which needs an exact version` };
  return { ok: true, value: { name, range, hash: { algorithm: algorithm as PinnedHash["algorithm"], hex: hex!.toLowerCase() } } };
}

/** The lockfileVersion at the top of a pnpm-lock.yaml (`lockfileVersion: '9.0'`, or a bare number in older ones). */
export function pnpmLockfileVersion(text: string): string | null {
  const match = /^lockfileVersion:\s*['"]?([0-9.]+)['"]?\s*$/m.exec(text);
  return match?.[1] ?? null;
}

/**
 * The pnpm majors that read a lockfile version frozen (https://github.com/pnpm/spec/tree/master/lockfile):
 * 5.3 is pnpm 6's, 5.4 pnpm 7's, 6.0 pnpm 8's, 9.0 pnpm 9's and 10's. Null for one not known
 * here (the default pnpm is then tried, and says itself what it thinks of the lockfile).
 */
export function pnpmForLockfile(version: string): string | null {
  const known: Array<[string, string]> = [
    ["5.3", "6"],
    ["5.4", "7"],
    ["6", "8"],
    ["9", "9 || 10"],
  ];
  for (const [prefix, range] of known) if (version === prefix || version.startsWith(`${prefix}.`)) return range;
  return null;
}

/** The package manager an app asks for, and why; an error for a `packageManager` the engine cannot provide. */
export function packageManagerRequest(facts: PackageManagerFacts): Result<PackageManagerRequest> {
  const field = facts.packageJson?.packageManager;
  const has = (file: string) => facts.files.has(file);
  const npmLockfile = has("package-lock.json") || has("npm-shrinkwrap.json");
  if (field !== undefined && field !== null) {
    if (typeof field !== "string") return { ok: false, reason: "packageManager in package.json must be a string, such as pnpm@9.15.9" };
    const parsed = parsePackageManagerField(field);
    if (!parsed.ok) return parsed;
    const { name, range, hash } = parsed.value;
    const reason = `from packageManager "${field.split("+")[0]}"`;
    const pinned = (flavor: PackageManagerFlavor, lockfile: boolean) => ({ ok: true as const, value: { flavor, range, hash, lockfile, reason } });
    if (name === "npm") return pinned("npm", npmLockfile);
    if (name === "pnpm") return pinned("pnpm", has("pnpm-lock.yaml"));
    if (name === "yarn") return pinned((semver.minVersion(range)?.major ?? 1) >= 2 ? "yarn-berry" : "yarn-classic", has("yarn.lock"));
    return { ok: false, reason: `packageManager "${field}" names ${name}; the engine provides npm, yarn and pnpm` };
  }
  const detected = (flavor: PackageManagerFlavor, range: string | null, reason: string) => ({
    ok: true as const,
    value: { flavor, range, hash: null, lockfile: flavor === "npm" ? npmLockfile : true, reason },
  });
  if (npmLockfile) return detected("npm", null, `from ${has("npm-shrinkwrap.json") ? "npm-shrinkwrap.json" : "package-lock.json"}`);
  if (has("pnpm-lock.yaml")) {
    const version = facts.pnpmLock === null ? null : pnpmLockfileVersion(facts.pnpmLock);
    const range = version === null ? null : pnpmForLockfile(version);
    if (range === null) return detected("pnpm", DEFAULT_RANGES.pnpm, `from pnpm-lock.yaml (lockfileVersion ${version ?? "unknown"}: the default pnpm)`);
    return detected("pnpm", range, `from pnpm-lock.yaml (lockfileVersion ${version})`);
  }
  if (has("yarn.lock")) {
    if (has(".yarnrc.yml")) return detected("yarn-berry", DEFAULT_RANGES["yarn-berry"], "from yarn.lock and .yarnrc.yml");
    return detected("yarn-classic", DEFAULT_RANGES["yarn-classic"], "from yarn.lock");
  }
  return detected("npm", null, "no lockfile");
}

/** The install, with dev dependencies (the build needs them, whatever NODE_ENV says), frozen to the lockfile when there is one. */
export function installArgv(request: Pick<PackageManagerRequest, "flavor" | "lockfile">): string[] {
  switch (request.flavor) {
    case "npm":
      return ["npm", request.lockfile ? "ci" : "install", "--include=dev", "--no-audit", "--no-fund"];
    case "yarn-classic":
      return ["yarn", "install", ...(request.lockfile ? ["--frozen-lockfile"] : []), "--production=false"];
    // Berry and pnpm freeze the lockfile by default under CI=true: without one, they must be told not to.
    case "yarn-berry":
      return ["yarn", "install", request.lockfile ? "--immutable" : "--no-immutable"];
    case "pnpm":
      return ["pnpm", "install", request.lockfile ? "--frozen-lockfile" : "--no-frozen-lockfile", "--prod=false"];
  }
}

/** A package.json script run by the app's package manager (`npm start`, `yarn run build`). */
export function scriptArgv(flavor: PackageManagerFlavor, script: string): string[] {
  const command = PACKAGES[flavor].command;
  return script === "start" ? [command, "start"] : [command, "run", script];
}

/** The package manager a build, its release, jobs and shell run with: a toolchain directory whose bin/ goes first on PATH, or the npm beside Node. */
export type ProvidedPackageManager = { flavor: PackageManagerFlavor; version: string | null; dir: string | null; binDir: string | null; description: string };

/** An install is bounded on its own, as Node's is: others may be waiting for it. */
const INSTALL_TIMEOUT_MS = 10 * 60_000;
/** The digests of an installed version's tarball, kept beside it so a pinned hash is checked on every build, not only the first. */
const DIGESTS_FILE = "tarball-digests.json";

export class PackageManagerToolchains {
  constructor(private readonly options: { registry: string; store: ToolchainStore }) {}

  /** The package manager `request` asks for, installed if it is not yet; `say` tells the build log what takes time. */
  async provide(request: PackageManagerRequest, node: ProvidedNode | null, signal: AbortSignal, say: (line: string) => void): Promise<ProvidedPackageManager> {
    const { registry, store } = this.options;
    const { flavor, range } = request;
    if (range === null) {
      if (node?.kind === "toolchain")
        return {
          flavor,
          version: node.npmVersion,
          dir: null,
          binDir: null,
          description: `Package manager: npm ${node.npmVersion} (${request.reason}), with Node ${node.version}`,
        };
      return { flavor, version: null, dir: null, binDir: null, description: `Package manager: npm, the engine host's own (${request.reason})` };
    }
    const { name, command } = PACKAGES[flavor];
    const packument = await fetchPackument(registry, name, signal);
    const stable = Object.keys(packument.versions).filter((version) => semver.valid(version) !== null && semver.prerelease(version) === null);
    // An exact pin may name a prerelease; a range means released versions only.
    const version = packument.versions[range] ? range : semver.maxSatisfying(stable, range);
    if (!version) {
      const newest = semver.maxSatisfying(stable, "*") ?? "none";
      throw new StepError(`no release of ${name} on ${registry} satisfies ${request.reason} ("${range}"; the newest is ${newest})`);
    }
    const meta = packument.versions[version]!;
    const { dir, provision } = await store.ensure(kindOf(name), version, (tree, scratch) => this.install(name, meta, tree, scratch), {
      signal,
      waiting: (how) =>
        say(how === "installed" ? `Installing ${name} ${version} from ${registry}` : `Waiting for ${name} ${version}, which another deploy is installing`),
    });
    if (request.hash) await checkPinnedHash(dir, name, version, flavor, request.hash);
    return {
      flavor,
      version,
      dir,
      binDir: path.join(dir, "bin"),
      description: `Package manager: ${command} ${version} (${request.reason})${describeProvision(provision, registry)}`,
    };
  }

  private async install(name: string, meta: PackumentVersion, tree: string, scratch: string): Promise<void> {
    const signal = AbortSignal.timeout(INSTALL_TIMEOUT_MS);
    try {
      await this.fill(name, meta, tree, scratch, signal);
    } catch (error) {
      if (signal.aborted)
        throw new StepError(`installing ${name} ${meta.version} from ${this.options.registry} took over ${INSTALL_TIMEOUT_MS / 60_000} minutes`);
      throw error;
    }
  }

  /** Lays the package out as npm installs a global one: lib/node_modules/<name>, and bin/<command> linked to each of its bins. */
  private async fill(name: string, meta: PackumentVersion, tree: string, scratch: string, signal: AbortSignal): Promise<void> {
    const tarball = path.join(scratch, "package.tgz");
    await downloadVerified(this.options.registry, name, meta, tarball, signal);
    const digests = Object.fromEntries(await Promise.all(HASH_ALGORITHMS.map(async (algorithm) => [algorithm, await hexDigest(tarball, algorithm)] as const)));
    await fsp.writeFile(path.join(tree, DIGESTS_FILE), JSON.stringify(digests));
    const packageDir = path.join(tree, "lib", "node_modules", name);
    await fsp.mkdir(packageDir, { recursive: true });
    await unpackPackage(tarball, packageDir);
    const bins = binsOf(name, JSON.parse(await fsp.readFile(path.join(packageDir, "package.json"), "utf8")) as { bin?: unknown });
    if (bins.length === 0) throw new StepError(`${name}@${meta.version} on ${this.options.registry} has no bin to run`);
    await fsp.mkdir(path.join(tree, "bin"));
    for (const [command, file] of bins) {
      const target = path.join(packageDir, file);
      if (!target.startsWith(packageDir + path.sep) || !(await fsp.stat(target).catch(() => null))?.isFile())
        throw new StepError(`${name}@${meta.version}'s bin ${command} (${file}) is not a file of the package`);
      // Executable whatever the tarball said (npm sets bins executable as it links them).
      await fsp.chmod(target, 0o755);
      await fsp.symlink(path.relative(path.join(tree, "bin"), target), path.join(tree, "bin", command));
    }
  }
}

/** The store's directory of a package (`@yarnpkg/cli-dist` → `yarnpkg-cli-dist`). */
function kindOf(name: string): string {
  return name.replace(/^@/, "").replace("/", "-");
}

/** A package.json's `bin` as [command, file] pairs: a string is a bin named after the package. */
function binsOf(name: string, manifest: { bin?: unknown }): Array<[string, string]> {
  const bin = manifest.bin;
  if (typeof bin === "string") return [[name.split("/").at(-1)!, bin]];
  if (typeof bin !== "object" || bin === null) return [];
  return Object.entries(bin).filter((entry): entry is [string, string] => typeof entry[1] === "string" && /^[A-Za-z0-9._-]+$/.test(entry[0]));
}

async function hexDigest(file: string, algorithm: string): Promise<string> {
  const hash = createHash(algorithm);
  await pipeline(fs.createReadStream(file), hash);
  return hash.digest("hex");
}

/**
 * Throws unless the installed release is the one `packageManager` pins the hash of: corepack
 * hashes the tarball it downloads, which for Yarn berry is not the npm package but the bin/yarn.js
 * inside it (as repo.yarnpkg.com serves it), so either matches for berry.
 */
async function checkPinnedHash(dir: string, name: string, version: string, flavor: PackageManagerFlavor, pinned: PinnedHash): Promise<void> {
  const digests = JSON.parse(await fsp.readFile(path.join(dir, DIGESTS_FILE), "utf8")) as Record<string, string>;
  if (digests[pinned.algorithm] === pinned.hex) return;
  if (flavor === "yarn-berry" && (await hexDigest(path.join(dir, "lib", "node_modules", name, "bin", "yarn.js"), pinned.algorithm)) === pinned.hex) return;
  throw new StepError(
    `${name}@${version} from the registry does not match the ${pinned.algorithm} hash packageManager pins (${pinned.hex.slice(0, 12)}…, got ${digests[pinned.algorithm]!.slice(0, 12)}…): refusing to run it`,
  );
}

function describeProvision(provision: Provision, registry: string): string {
  if (provision === "installed") return `, installed from ${registry}`;
  if (provision === "waited") return `, installed from ${registry} by another deploy`;
  return "";
}

/**
 * What the build and the release need in their environment beside PATH: where the app's
 * dependencies come from when the engine is configured with a mirror (hosts that cannot reach
 * registry.npmjs.org cannot fetch dependencies from it either), unless the app's variables say.
 * npm, pnpm and yarn classic read npm_config_registry, yarn berry its own variables (and it
 * refuses a registry on plain http unless its host is listed: the engine's administrator chose it).
 * Yarn berry's telemetry, on by default outside CI (so in the release), is off: an engine's
 * builds and apps reach the hosts their owners chose, not yarnpkg.com's.
 */
export function packageManagerEnv(flavor: PackageManagerFlavor, registry: string, variables: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  if (flavor === "yarn-berry" && variables.YARN_ENABLE_TELEMETRY === undefined) env.YARN_ENABLE_TELEMETRY = "0";
  const url = new URL(registry);
  if (url.hostname === "registry.npmjs.org") return env;
  if (!appSetsRegistry(variables)) env.npm_config_registry = registry;
  if (variables.YARN_NPM_REGISTRY_SERVER === undefined) {
    env.YARN_NPM_REGISTRY_SERVER = registry;
    if (url.protocol === "http:" && variables.YARN_UNSAFE_HTTP_WHITELIST === undefined) env.YARN_UNSAFE_HTTP_WHITELIST = url.hostname;
  }
  return env;
}

/** Whether the app's variables name the registry npm, pnpm and yarn classic install from (the engine's then steps aside). */
export function appSetsRegistry(variables: Record<string, string>): boolean {
  return variables.npm_config_registry !== undefined || variables.NPM_CONFIG_REGISTRY !== undefined;
}
