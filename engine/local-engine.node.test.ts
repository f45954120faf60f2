import fsp from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineHome, fixture, service, task } from "../test/engine-harness";
import { type GitServer, startGitServer } from "../test/git-server";
import { cachedPackages, type NpmRegistry, startNpmRegistry } from "../test/support/npm-registry";
import { skipWithout } from "../test/support/requirements";
import { parseNodeDefault } from "./config";
import type { Engine } from "./core";
import type { ExecSession } from "./runtime/runtime";
import { launchSpec } from "./runtime/local/layout";

// The real Node 18 and 22 packages test/fixtures/registry/fetch keeps (the host runs Node 20).
const packages = await cachedPackages();

/** The fixture's package.json with `extra` fields (engines, volta). */
async function packageJson(extra: Record<string, unknown>): Promise<string> {
  const base = JSON.parse(await fsp.readFile(path.join(fixture("node-version"), "package.json"), "utf8")) as Record<string, unknown>;
  return JSON.stringify({ ...base, ...extra }, null, 2);
}

async function output(session: ExecSession): Promise<string> {
  let text = "";
  session.on("data", (chunk: Buffer | string) => (text += chunk.toString()));
  session.end();
  await session.exited;
  return text;
}

describe.skipIf(skipWithout(packages.ok ? null : packages.missing))("local engine: the Node an app names, installed from the npm registry", () => {
  const cached = packages.ok ? packages : null!;
  let registry: NpmRegistry;
  let git: GitServer;
  let env: Awaited<ReturnType<typeof engineHome>>;
  let engine: Engine;

  beforeAll(async () => {
    registry = await startNpmRegistry([cached.node18.file, cached.node22.file, cached.npm.file]);
    git = await startGitServer();
    env = await engineHome({ drainTimeoutMs: 500, stopGraceMs: 2_000 }, undefined, { registry: registry.url, nodeDefault: parseNodeDefault("lts") });
    engine = env.newEngine();
    await engine.start();
  }, 60_000);

  afterAll(async () => {
    await env?.cleanup();
    await git?.close();
    await registry?.close();
  });

  /** Deploys the fixture with `files` added (a package.json with engines, an .nvmrc) as service `name`. */
  async function deploy(name: string, files: Record<string, string>) {
    await git.createRepo(name, fixture("node-version"), files);
    const app = service({ name, config: { git: { url: git.url(name) }, healthCheckPath: "/health" } });
    const deployment = task("DEPLOY", [app]);
    await engine.execute(deployment);
    const log = env.lines.filter((line) => line.stream.kind === "deployment" && line.stream.deploymentId === deployment.deploymentId).map((line) => line.text);
    return { app, final: env.final(deployment.deploymentId), log };
  }

  async function answer(name: string) {
    const response = await env.get(`${name}-test.localhost`);
    expect(response.status).toBe(200);
    return JSON.parse(response.body) as { node: string; built: { node: string; npm: string } };
  }

  it('builds and runs an app whose engines.node is "18.x" on Node 18, with its npm, in the build, the release and its shell', async () => {
    const { version } = cached.node18;
    const { app, final, log } = await deploy("eighteen", { "package.json": await packageJson({ engines: { node: "18.x" } }) });
    expect(final?.status, log.join("\n")).toBe("succeeded");
    expect(log).toContain(`Installing Node ${version} from ${registry.url}`);
    expect(log).toContain(`Node ${version} (from engines.node "18.x"), npm ${cached.npm.version}, installed from ${registry.url}`);
    expect(log).toContain(`built with Node v${version} and npm ${cached.npm.version}`);
    expect(await answer("eighteen")).toEqual({ node: `v${version}`, built: { node: `v${version}`, npm: cached.npm.version } });
    expect(process.version).not.toBe(`v${version}`);

    // Its shell finds the same Node first on PATH, in the release's sandbox.
    expect((await output(await engine.exec!(app.id, ["node", "--version"], { tty: false }))).trim()).toBe(`v${version}`);
    // The toolchain is in the engine's store, shown read-only in the sandbox, and read-only to services.
    const toolchain = path.join(env.home, "toolchains", "node", version);
    const releases = path.join(env.home, "services", app.id, "releases");
    const [releaseId] = await fsp.readdir(releases);
    const launch = launchSpec.parse(JSON.parse(await fsp.readFile(path.join(releases, releaseId!, "launch.json"), "utf8")));
    expect(launch.env.PATH?.split(":").slice(0, 2)).toEqual([path.join(launch.cwd, "node_modules/.bin"), path.join(toolchain, "bin")]);
    expect(launch.sandbox?.readonly).toContain(toolchain);
    expect(launch.sandbox?.writable).not.toContain(toolchain);
    const node = await fsp.stat(path.join(toolchain, "bin", "node"));
    expect({ mode: node.mode & 0o7777, uid: node.uid }).toEqual({ mode: 0o755, uid: process.getuid!() });
    await expect(output(await engine.exec!(app.id, ["sh", "-c", `touch ${toolchain}/bin/x 2>&1; echo "exit $?"`], { tty: false }))).resolves.toMatch(/exit 1/);
  });

  it("takes the version from an .nvmrc", async () => {
    const { final, log } = await deploy("nvmrc", { ".nvmrc": "v22\n" });
    expect(final?.status, log.join("\n")).toBe("succeeded");
    expect(log).toContain(`Node ${cached.node22.version} (from .nvmrc "v22"), npm ${cached.npm.version}, installed from ${registry.url}`);
    expect((await answer("nvmrc")).node).toBe(`v${cached.node22.version}`);
  });

  it("installs a version once: another service that wants it, or the LTS it is, downloads nothing", async () => {
    const before = registry.downloads();
    const { final, log } = await deploy("also-eighteen", { "package.json": await packageJson({ engines: { node: ">=18.20 <19" } }) });
    expect(final?.status, log.join("\n")).toBe("succeeded");
    expect(log).toContain(`Node ${cached.node18.version} (from engines.node ">=18.20 <19"), npm ${cached.npm.version}`);
    expect((await answer("also-eighteen")).node).toBe(`v${cached.node18.version}`);

    // No version named: the current LTS, which of 18 and 22 (both LTS lines by now) is 22.
    const unnamed = await deploy("unnamed", {});
    expect(unnamed.final?.status, unnamed.log.join("\n")).toBe("succeeded");
    expect(unnamed.log).toContain(`Node ${cached.node22.version} (no version named: the current LTS), npm ${cached.npm.version}`);
    expect((await answer("unnamed")).node).toBe(`v${cached.node22.version}`);
    expect(registry.downloads()).toEqual(before);
  });

  it("fails the build of a range nothing satisfies, naming it and the newest release", async () => {
    const { final } = await deploy("too-new", { "package.json": await packageJson({ engines: { node: ">=30" } }) });
    expect(final?.status).toBe("failed");
    expect(final?.message).toContain(`no Node release satisfies engines.node ">=30" (the newest on ${registry.url} is ${cached.node22.version})`);
    expect((await env.get("too-new-test.localhost")).status).toBe(503);
  });

  it("reads no version file through a symbolic link, which could show a host file's first line in the log", async () => {
    const dir = await fsp.mkdtemp(path.join(env.home, "..", "slipway-symlinked-nvmrc-"));
    try {
      await fsp.cp(fixture("node-version"), dir, { recursive: true });
      await fsp.symlink("/etc/hostname", path.join(dir, ".nvmrc"));
      await git.createRepo("symlinked", dir);
      const deployment = task("DEPLOY", [service({ name: "symlinked", config: { git: { url: git.url("symlinked") } } })]);
      await engine.execute(deployment);
      expect(env.final(deployment.deploymentId)).toMatchObject({
        status: "failed",
        message: expect.stringContaining(".nvmrc is a symbolic link: the engine reads only regular files of the repository"),
      });
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses a tarball that does not match its integrity, installing nothing", async () => {
    // An engine home of its own, where Node 18 is not installed yet.
    const tampered = await engineHome({ drainTimeoutMs: 500, stopGraceMs: 2_000 }, undefined, { registry: registry.url, nodeDefault: "system" });
    try {
      const other = tampered.newEngine();
      await other.start();
      registry.tamper(path.basename(cached.node18.file).replace(/-[\d.]+\.tgz$/, ""), cached.node18.version);
      await git.createRepo("tampered", fixture("node-version"), { "package.json": await packageJson({ engines: { node: "18" } }) });
      const deployment = task("DEPLOY", [service({ name: "tampered", config: { git: { url: git.url("tampered") }, healthCheckPath: "/health" } })]);
      await other.execute(deployment);
      const final = tampered.final(deployment.deploymentId);
      expect(final?.status).toBe("failed");
      expect(final?.message).toMatch(/the tarball of node-linux-\w+@18\.\d+\.\d+ from .* does not match its integrity on the registry .*refusing to unpack it/);
      expect(await fsp.readdir(path.join(tampered.home, "toolchains", "node"))).toEqual([]);
    } finally {
      await tampered.cleanup();
    }
  });
});
