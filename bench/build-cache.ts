import { execFile } from "node:child_process";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import getPort from "get-port";
import { parseNodeDefault } from "../engine/config";
import { createDockerEngine, type Engine } from "../engine/core";
import { engineHome, fixture, recordingReporter, request, service, task } from "../test/engine-harness";
import type { GitServer } from "../test/git-server";
import { killProcessesUnder } from "../test/process-cleanup";
import { cachedCorpus } from "../test/support/corpus";
import { cachedPackages, type NpmRegistry, startNpmRegistry } from "../test/support/npm-registry";
import { startPodman } from "../test/support/podman";

const run = promisify(execFile);

/**
 * Issue 14's build cache: the corpus's Next.js app (create-next-app) deployed by a real local
 * engine twice, first with an empty build cache (cold), then a new commit of it with the cache
 * the first left (warm); beside them, the same install and build run by hand (`npm ci`, then
 * `next build`, in a copy of the app, with an empty npm cache), the baseline. Everything comes
 * from an npm registry on 127.0.0.1 serving the packages the app's lockfile locks, as in the
 * corpus test. The engine's Node is installed before anything is timed (by the deploy of a
 * dependency-free app), and the by-hand run uses that same Node and npm: the figures compare
 * builds, not downloads of Node.
 */
export async function measureBuildCache(git: GitServer) {
  const corpus = await cachedCorpus();
  const nodes = await cachedPackages();
  if (!corpus.ok) throw new Error(`the build-cache bench needs ${corpus.missing}`);
  if (!nodes.ok) throw new Error(`the build-cache bench needs ${nodes.missing}`);
  const app = corpus.app("next");
  const registry = await startNpmRegistry([...corpus.tarballs, nodes.node22.file, nodes.npm.file]);
  const env = await engineHome({ drainTimeoutMs: 500, stopGraceMs: 2_000 }, undefined, { registry: registry.url, nodeDefault: parseNodeDefault("lts") });
  const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), "slipway-bench-by-hand-"));
  // When each line of a deployment's log arrived: the deploy's phases, from its own log.
  const stamps: Array<{ deploymentId: string; text: string; at: number }> = [];
  const engine: Engine = env.newEngine({
    ...env.reporter,
    log(stream, fd, text, at, origin) {
      if (stream.kind === "deployment") stamps.push({ deploymentId: stream.deploymentId, text, at: performance.now() });
      env.reporter.log(stream, fd, text, at, origin);
    },
  });
  try {
    await engine.start();
    // The same service each time (its id keys its build cache).
    const warmup = service({ name: "warmup", config: { git: { url: git.url("build-cache-warmup") } } });
    const next = service({ name: "next", config: { git: { url: git.url("build-cache-next") } } });
    const deploy = async (spec: typeof next) => {
      const deployment = task("DEPLOY", [spec]);
      const started = performance.now();
      await engine.execute(deployment);
      const ended = performance.now();
      const final = env.final(deployment.deploymentId);
      if (final?.status !== "succeeded") throw new Error(`the bench deploy of ${spec.name} ${final?.status ?? "did not end"}: ${final?.message ?? ""}`);
      const log = stamps.filter((line) => line.deploymentId === deployment.deploymentId);
      return { elapsed: ended - started, log, phases: phasesOf(log, started, ended) };
    };

    await git.createRepo("build-cache-warmup", fixture("node-app"));
    await deploy(warmup);
    const nodeBin = path.join(env.home, "toolchains", "node", nodes.node22.version, "bin");
    await fsp.access(path.join(nodeBin, "node"));

    const byHand = await installAndBuildByHand(app, path.join(scratch, "next"), nodeBin, registry);

    await git.createRepo("build-cache-next", app);
    const cold = await deploy(next);
    await expectPage(env.routerPort, "Hello World!");
    // A new commit, as a push brings: the page changes, the lockfile does not.
    const page = await fsp.readFile(path.join(app, "app", "page.js"), "utf8");
    await git.pushDirectory("build-cache-next", app, { "app/page.js": page.replace("Hello World!", "Hello again!") });
    const warm = await deploy(next);
    await expectPage(env.routerPort, "Hello again!");
    const cacheLine = (log: typeof cold.log) => log.find((line) => line.text.startsWith("Build cache: "))?.text ?? "no build cache line";
    // Figures of a warm deploy that did not restore the cache would say nothing of the cache.
    if (!cacheLine(warm.log).startsWith("Build cache: restored")) throw new Error(`the warm deploy did not restore the build cache: ${cacheLine(warm.log)}`);
    return {
      cold: { ms: cold.elapsed, cache: cacheLine(cold.log), phases: cold.phases },
      warm: { ms: warm.elapsed, cache: cacheLine(warm.log), phases: warm.phases },
      byHand,
    };
  } finally {
    await env.cleanup();
    await registry.close();
    await fsp.rm(scratch, { recursive: true, force: true });
  }
}

/**
 * The same on the docker runtime, against a real Podman started for the bench (as the docker
 * tests start it): the corpus's Next.js app built into an image from its plan, cold (no layer, no
 * download cache), then a new commit of it that changes a page, whose image reuses the install's
 * layer (install-layer.ts). Its images start from busybox with the host's glibc, as the tests'
 * do: no image registry is reachable here. Throws unless the warm build reused the install.
 */
export async function measureDockerBuildCache(git: GitServer) {
  const corpus = await cachedCorpus();
  const nodes = await cachedPackages();
  if (!corpus.ok) throw new Error(`the build-cache bench needs ${corpus.missing}`);
  if (!nodes.ok) throw new Error(`the build-cache bench needs ${nodes.missing}`);
  const podman = await startPodman();
  if ("skip" in podman) throw new Error(`the docker build-cache bench needs Podman: ${podman.skip}`);
  const app = corpus.app("next");
  const registry = await startNpmRegistry([...corpus.tarballs, nodes.node22.file, nodes.npm.file]);
  const home = await fsp.realpath(await fsp.mkdtemp(path.join(os.tmpdir(), "slipway-bench-docker-cache-")));
  const routerPort = await getPort({ host: "127.0.0.1" });
  const recording = recordingReporter();
  const engine = createDockerEngine({
    home,
    routerPort,
    reporter: recording.reporter,
    docker: podman.docker,
    toolchains: { registry: registry.url, nodeDefault: parseNodeDefault("lts") },
    builds: { buildImage: await podman.glibcImage(), buildNetwork: "host" },
    tuning: { drainTimeoutMs: 500, stopGraceMs: 2_000, supervisionMs: 300 },
  });
  const next = service({ name: "next", config: { git: { url: git.url("docker-cache-next") }, healthCheckTimeoutSeconds: 60 } });
  try {
    await engine.start();
    const deploy = async () => {
      const deployment = task("DEPLOY", [next]);
      const started = performance.now();
      await engine.execute(deployment);
      const elapsed = performance.now() - started;
      const final = recording.final(deployment.deploymentId);
      const log = recording.lines
        .filter((line) => line.stream.kind === "deployment" && line.stream.deploymentId === deployment.deploymentId)
        .map((line) => line.text);
      if (final?.status !== "succeeded") throw new Error(`the bench deploy of next on Podman ${final?.status ?? "did not end"}: ${final?.message ?? ""}`);
      return { elapsed, log };
    };
    await git.createRepo("docker-cache-next", app);
    const cold = await deploy();
    await expectPage(routerPort, "Hello World!");
    const page = await fsp.readFile(path.join(app, "app", "page.js"), "utf8");
    await git.pushDirectory("docker-cache-next", app, { "app/page.js": page.replace("Hello World!", "Hello again!") });
    const warm = await deploy();
    await expectPage(routerPort, "Hello again!");
    const reused = warm.log.find((line) => line.startsWith("install: unchanged, reused from the image cache"));
    if (!reused) throw new Error(`the warm image build ran the install again:\n${warm.log.join("\n")}`);
    return { cold: cold.elapsed, warm: warm.elapsed, reused };
  } finally {
    await engine.shutdown().catch(() => undefined);
    await killProcessesUnder(home);
    await fsp.rm(home, { recursive: true, force: true });
    await fsp.rm(path.join("/var/tmp/buildah-cache", `slipway-${next.id}`), { recursive: true, force: true });
    await registry.close();
    await podman.stop();
  }
}

/**
 * Where a deploy's time went, from when its log's lines arrived: up to the install (clone,
 * plan, toolchains, opening the cache), the install (with restoring node_modules, when npm ci
 * is skipped), the build (with saving the cache), and the rest (start, health check, switch).
 */
function phasesOf(log: Array<{ text: string; at: number }>, started: number, ended: number): string {
  const at = (test: (text: string) => boolean) => log.find((line) => test(line.text))?.at ?? Number.NaN;
  const install = at((text) => /^Build cache: (cold|restored|skipped)/.test(text));
  const build = at((text) => text.startsWith("$ npm run build"));
  const settled = at((text) => /^Build cache: (saved|dropped)/.test(text));
  const s = (from: number, to: number) => `${((to - from) / 1000).toFixed(1)} s`;
  return `before the install ${s(started, install)}, install ${s(install, build)}, build ${s(build, settled)}, start and switch ${s(settled, ended)}`;
}

/** The app's install and build without Slipway, in ms: a copy of it, an empty npm cache, the same registry and Node. */
async function installAndBuildByHand(app: string, dir: string, nodeBin: string, registry: NpmRegistry): Promise<number> {
  await fsp.cp(app, dir, { recursive: true });
  const env = {
    ...process.env,
    PATH: `${nodeBin}${path.delimiter}${process.env.PATH ?? ""}`,
    npm_config_registry: registry.url,
    npm_config_cache: path.join(dir, "..", "npm-cache"),
    CI: "true",
  };
  const started = performance.now();
  await run("npm", ["ci", "--include=dev", "--no-audit", "--no-fund"], { cwd: dir, env, maxBuffer: 64 * 1024 * 1024 });
  await run("npm", ["run", "build"], { cwd: dir, env, maxBuffer: 64 * 1024 * 1024 });
  return performance.now() - started;
}

/** The app's page through the router, which must answer with `text`: the deploy served what it built. */
async function expectPage(routerPort: number, text: string): Promise<void> {
  const answer = await request(routerPort, "next-test.localhost", "/");
  if (answer.status !== 200 || !answer.body.includes(text))
    throw new Error(`the Next.js app answered ${answer.status} without "${text}": ${answer.body.slice(0, 300)}`);
}
