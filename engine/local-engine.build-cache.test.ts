import { execFile } from "node:child_process";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineHome, fixture, service, task } from "../test/engine-harness";
import { type GitServer, startGitServer } from "../test/git-server";
import { cachedPackageManagers, type NpmRegistry, startNpmRegistry } from "../test/support/npm-registry";
import { skipWithout } from "../test/support/requirements";
import type { ApplicationServiceSpec } from "./protocol";
import type { Engine } from "./core";
import type { ExecSession } from "./runtime/runtime";

// The real yarn classic and ms packages test/fixtures/registry/fetch keeps: the app installs ms from the tests' registry.
const managers = await cachedPackageManagers();

async function output(session: ExecSession): Promise<string> {
  let text = "";
  session.on("data", (chunk: Buffer | string) => (text += chunk.toString()));
  session.end();
  await session.exited;
  return text;
}

/**
 * The build cache (issue 14, item 4), counted rather than timed: a warm build downloads no
 * tarball from the registry and finds its framework cache where the last build left it; a
 * changed lockfile or `noCache` starts afresh; each service has its own, gone with it.
 */
describe.skipIf(skipWithout(managers.ok ? null : managers.missing))("local engine: the build cache", () => {
  const cached = managers.ok ? managers : null!;
  let registry: NpmRegistry;
  let git: GitServer;
  let env: Awaited<ReturnType<typeof engineHome>>;
  let engine: Engine;
  const msTarball = () => `/ms/-/ms-${cached.ms.version}.tgz`;
  const msDownloads = () => registry.downloads().filter((download) => download === msTarball()).length;

  beforeAll(async () => {
    registry = await startNpmRegistry([cached.yarn.file, cached.berry.file, cached.ms.file]);
    git = await startGitServer();
    env = await engineHome({ drainTimeoutMs: 500, stopGraceMs: 2_000 }, undefined, { registry: registry.url, nodeDefault: "system" });
    engine = env.newEngine();
    await engine.start();
  }, 60_000);

  afterAll(async () => {
    await env?.cleanup();
    await git?.close();
    await registry?.close();
  });

  /** The yarn classic fixture's lockfile, naming this run's registry (yarn 1 fetches the URLs its lockfile names). */
  async function lockfile(extra = ""): Promise<Record<string, string>> {
    const lock = await fsp.readFile(path.join(fixture("yarn-classic"), "yarn.lock"), "utf8");
    return { "yarn.lock": lock.replaceAll(/http:\/\/127\.0\.0\.1:\d+/g, registry.url) + extra };
  }

  /** The app, whose build also counts its runs in a framework cache (node_modules/.cache, as babel's and webpack's). */
  function app(name: string): ApplicationServiceSpec {
    const buildCommand = "yarn run build && mkdir -p node_modules/.cache/counter && echo run >> node_modules/.cache/counter/runs";
    return service({ name, config: { git: { url: git.url(name) }, healthCheckPath: "/health", buildCommand } });
  }

  /** The deployment's whole log, once it succeeded. */
  async function deployLog(spec: ApplicationServiceSpec, noCache = false) {
    const plain = task("DEPLOY", [spec]);
    const deployment = noCache ? { ...plain, snapshot: { ...plain.snapshot, noCache: true } } : plain;
    await engine.execute(deployment);
    const log = env.lines.filter((line) => line.stream.kind === "deployment" && line.stream.deploymentId === deployment.deploymentId).map((line) => line.text);
    expect(env.final(deployment.deploymentId)?.status, log.join("\n")).toBe("succeeded");
    return log;
  }

  async function deploy(spec: ApplicationServiceSpec, noCache = false) {
    return (await deployLog(spec, noCache)).filter((line) => line.startsWith("Build cache:") && !line.startsWith("Build cache: node_modules"));
  }

  /** How many builds the framework cache of the live release has seen. */
  async function buildRuns(spec: ApplicationServiceSpec): Promise<number> {
    const text = await output(await engine.exec!(spec.id, ["cat", "node_modules/.cache/counter/runs"], { tty: false }));
    return text.split("\n").filter((line) => line === "run").length;
  }

  const cacheDir = (spec: ApplicationServiceSpec) => path.join(env.home, "services", spec.id, "cache");

  it("restores an unchanged app's packages and framework cache, starts afresh on a changed lockfile or noCache, and goes with its service", async () => {
    const web = app("cached");
    await git.createRepo("cached", fixture("yarn-classic"), await lockfile());

    expect(await deploy(web)).toEqual(["Build cache: cold (no cache yet)", expect.stringMatching(/^Build cache: saved \(\d+\.\d MB\)$/)]);
    expect(msDownloads()).toBe(1);
    expect(await buildRuns(web)).toBe(1);

    // Unchanged: yarn finds ms in the cache (no download), the build finds its last run's cache.
    const warm = await deploy(web);
    expect(warm[0]).toMatch(/^Build cache: restored \(key [0-9a-f]{16}, \d+\.\d MB\)$/);
    expect(msDownloads()).toBe(1);
    expect(await buildRuns(web)).toBe(2);

    // A changed lockfile: a fresh cache, the old one removed.
    await git.pushDirectory("cached", fixture("yarn-classic"), await lockfile("\n# changed\n"));
    expect((await deploy(web))[0]).toBe("Build cache: cold (lockfile changed)");
    expect(msDownloads()).toBe(2);
    expect(await buildRuns(web)).toBe(1);
    expect((await fsp.readdir(cacheDir(web))).filter((entry) => !entry.endsWith(".json"))).toHaveLength(1);

    // noCache: nothing restored, the fresh result saved for the next build.
    expect((await deploy(web, true))[0]).toBe("Build cache: skipped (--no-cache); this build's result is saved");
    expect(msDownloads()).toBe(3);
    expect(await buildRuns(web)).toBe(1);
    expect((await deploy(web))[0]).toMatch(/^Build cache: restored /);
    expect(msDownloads()).toBe(3);
    expect(await buildRuns(web)).toBe(2);

    // Another service of the same app has its own cache, and cannot see the first one's.
    const other = app("other");
    await git.createRepo("other", fixture("yarn-classic"), await lockfile());
    expect((await deploy(other))[0]).toBe("Build cache: cold (no cache yet)");
    expect(msDownloads()).toBe(4);
    expect(await buildRuns(other)).toBe(1);
    // Nor does a release see its own: the cache is its builds' alone (what a secret fetched stays there).
    for (const [from, of] of [
      [other, web],
      [web, web],
    ] as const) {
      const peek = await output(await engine.exec!(from.id, ["/bin/sh", "-c", `ls ${cacheDir(of)} 2>&1; echo exit $?`], { tty: false }));
      expect(peek).toMatch(/No such file or directory[\s\S]*exit [12]/);
    }

    await engine.execute(task("DELETE", [web]));
    await expect(fsp.stat(cacheDir(web))).rejects.toMatchObject({ code: "ENOENT" });
    await expect(fsp.stat(cacheDir(other))).resolves.toBeTruthy();
  }, 180_000);

  it("restores an npm app's node_modules and skips npm ci while its package-lock.json is unchanged, runs it again on a change or noCache", async () => {
    // The same app with npm: its package-lock.json made by the real npm against the tests' registry.
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "slipway-npm-app-"));
    try {
      for (const name of ["package.json", "server.js", "build.js"]) await fsp.copyFile(path.join(fixture("yarn-classic"), name), path.join(dir, name));
      await promisify(execFile)("npm", ["install", "--package-lock-only", "--no-audit", "--no-fund", `--registry=${registry.url}`], { cwd: dir });
      const web = service({ name: "npm-cached", config: { git: { url: git.url("npm-cached") }, healthCheckPath: "/health" } });
      await git.createRepo("npm-cached", dir);
      const ranNpmCi = (log: string[]) => log.some((line) => line.startsWith("$ npm ci"));
      const skipped = "install: node_modules restored from the build cache (package-lock.json unchanged)";
      const inADay = async () => (await output(await engine.exec!(web.id, ["node", "-e", "console.log(require('ms')('1d'))"], { tty: false }))).trim();

      const cold = await deployLog(web);
      expect(ranNpmCi(cold), cold.join("\n")).toBe(true);
      expect(cold).not.toContain(skipped);

      // A new commit, the same lockfile: node_modules comes back from the cache, npm ci is skipped, the app runs with it.
      await git.pushDirectory("npm-cached", dir, { "README.md": "a new commit\n" });
      const warm = await deployLog(web);
      expect(warm).toContain(skipped);
      expect(
        warm.some((line) => /^Build cache: node_modules restored in \d+\.\d s$/.test(line)),
        warm.join("\n"),
      ).toBe(true);
      expect(ranNpmCi(warm)).toBe(false);
      expect(await inADay()).toBe("86400000");

      // A changed lockfile: a fresh cache, npm ci again.
      await git.pushDirectory("npm-cached", dir, { "package-lock.json": `${await fsp.readFile(path.join(dir, "package-lock.json"), "utf8")}\n` });
      const changed = await deployLog(web);
      expect(changed).toContain("Build cache: cold (lockfile changed)");
      expect(ranNpmCi(changed)).toBe(true);
      expect(changed).not.toContain(skipped);

      // noCache: npm ci, whatever the cache holds.
      const fresh = await deployLog(web, true);
      expect(ranNpmCi(fresh)).toBe(true);
      expect(fresh).not.toContain(skipped);
      expect(await inADay()).toBe("86400000");
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  }, 180_000);

  it("keeps a yarn berry app's package cache and install state, and skips its install while yarn.lock, .yarnrc.yml and its dependencies are unchanged, with either linker", async () => {
    const web = service({ name: "berry-cached", config: { git: { url: git.url("berry-cached") }, healthCheckPath: "/health" } });
    const ranInstall = (log: string[]) => log.some((line) => line.startsWith("$ yarn install"));
    const skipped = "install: restored from the build cache (yarn.lock, .yarnrc.yml and package.json's dependencies unchanged)";
    const answer = async () => JSON.parse((await env.get("berry-cached-test.localhost")).body) as { app: string; inADay: number };
    const settings = await fsp.readFile(path.join(fixture("yarn-berry"), ".yarnrc.yml"), "utf8");
    const before = msDownloads();

    for (const linker of ["pnp", "node-modules"]) {
      const yarnrc = settings.replace("nodeLinker: pnp", `nodeLinker: ${linker}`);
      const push = linker === "pnp" ? git.createRepo.bind(git) : git.pushDirectory.bind(git);
      await push("berry-cached", fixture("yarn-berry"), { ".yarnrc.yml": yarnrc });
      const cold = await deployLog(web);
      expect(ranInstall(cold), cold.join("\n")).toBe(true);
      expect(cold).toContain(linker === "pnp" ? "Build cache: cold (no cache yet)" : "Build cache: cold (lockfile changed)");
      // The first install downloads ms; the second finds it in the mirror yarn keeps in the service's home (enableMirror).
      expect(msDownloads()).toBe(before + 1);

      // A new commit, the same lockfile, settings and dependencies: the install comes back whole, yarn install is skipped, the app runs with it.
      await git.pushDirectory("berry-cached", fixture("yarn-berry"), { ".yarnrc.yml": yarnrc, "README.md": `a new commit (${linker})\n` });
      const warm = await deployLog(web);
      expect(warm, warm.join("\n")).toContain(skipped);
      expect(ranInstall(warm)).toBe(false);
      const restored = linker === "pnp" ? ".yarn/cache, .yarn/install-state.gz, .pnp.cjs" : "node_modules, .yarn/cache, .yarn/install-state.gz";
      expect(warm.some((line) => line.startsWith(`Build cache: ${restored} restored in `))).toBe(true);
      expect(warm).toContain("$ yarn run build");
      expect(msDownloads()).toBe(before + 1);
      expect(await answer()).toMatchObject({ app: "slipway-fixture-yarn-berry", inADay: 86_400_000 });
    }

    // A changed dependency range in package.json (yarn.lock as it was): a fresh cache, and yarn install runs (and refuses the stale lockfile, as --immutable says).
    const manifest = JSON.parse(await fsp.readFile(path.join(fixture("yarn-berry"), "package.json"), "utf8")) as { dependencies: Record<string, string> };
    manifest.dependencies.ms = "^2.1.2";
    await git.pushDirectory("berry-cached", fixture("yarn-berry"), { "package.json": JSON.stringify(manifest, null, 2) });
    const deployment = task("DEPLOY", [web]);
    await engine.execute(deployment);
    const log = env.lines.filter((line) => line.stream.kind === "deployment" && line.stream.deploymentId === deployment.deploymentId).map((line) => line.text);
    expect(log).toContain("Build cache: cold (lockfile changed)");
    expect(ranInstall(log)).toBe(true);
    expect(env.final(deployment.deploymentId)?.message).toContain("install command `yarn install --immutable` failed");
  }, 240_000);

  it("drops a cache over SLIPWAY_BUILD_CACHE_MB after the build, so the next build is cold", async () => {
    const small = await engineHome({ drainTimeoutMs: 500, stopGraceMs: 2_000, buildCacheMb: 0 }, undefined, { registry: registry.url, nodeDefault: "system" });
    try {
      const tiny = small.newEngine();
      await tiny.start();
      const web = app("tiny");
      await git.createRepo("tiny", fixture("yarn-classic"), await lockfile());
      const deployment = task("DEPLOY", [web]);
      await tiny.execute(deployment);
      const log = small.lines.filter((line) => line.stream.kind === "deployment" && line.text.startsWith("Build cache:")).map((line) => line.text);
      expect(small.final(deployment.deploymentId)?.status, small.final(deployment.deploymentId)?.message).toBe("succeeded");
      expect(log[1]).toMatch(/^Build cache: dropped \(\d+\.\d MB, over the limit of 0\.0 MB set by SLIPWAY_BUILD_CACHE_MB\): the next build is cold$/);
      expect((await fsp.readdir(path.join(small.home, "services", web.id, "cache"))).filter((entry) => !entry.endsWith(".json"))).toEqual([]);
    } finally {
      await small.cleanup();
    }
  }, 120_000);
});
