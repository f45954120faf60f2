import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { testPort } from "../../../test/support/ports";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixture, recordingReporter, task } from "../../../test/engine-harness";
import { type GitServer, startGitServer } from "../../../test/git-server";
import { killProcessesUnder } from "../../../test/process-cleanup";
import { cachedPackageManagers, cachedPackages, type NpmRegistry, startNpmRegistry } from "../../../test/support/npm-registry";
import { startPodman } from "../../../test/support/podman";
import { skipWithout } from "../../../test/support/requirements";
import { parseNodeDefault } from "../../config";
import { createDockerEngine, type Engine } from "../../core";
import { applicationServiceSpec, type ApplicationServiceSpec } from "../../protocol";
import { describePlan } from "../build-plan";
import { appDirectory } from "../shared/git";
import { servicePlan } from "../service-plan";

const run = promisify(execFile);
/** Where Podman's builder keeps cache mounts (RUN --mount=type=cache) on its host. */
const DOWNLOAD_CACHES = "/var/tmp/buildah-cache";

// The real Node 22, npm, yarn and ms packages test/fixtures/registry/fetch keeps, served on 127.0.0.1 as a mirror would.
const nodes = await cachedPackages();
const managers = await cachedPackageManagers();
// Started while the file is collected, so that a machine without Podman skips with the reason.
const podman = await startPodman();
const missing = "skip" in podman ? podman.skip : !nodes.ok ? nodes.missing : !managers.ok ? managers.missing : null;

/** GET through the router with a Host header, with the response's headers (the static server's are its signature). */
function get(port: number, host: string, urlPath = "/", encoding = "identity"): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path: urlPath, headers: { host, "accept-encoding": encoding }, agent: false, timeout: 5_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8"), headers: res.headers }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
  });
}

describe.skipIf(skipWithout(missing))("docker engine: apps without a Dockerfile are built from the local runtime's plan, in an image", () => {
  const service = "skip" in podman ? null! : podman;
  const node22 = nodes.ok ? nodes.node22 : null!;
  const npm = nodes.ok ? nodes.npm : null!;
  const cached = managers.ok ? managers : null!;
  let registry: NpmRegistry;
  let git: GitServer;
  let home: string;
  let routerPort: number;
  let engine: Engine;
  const recording = recordingReporter();

  beforeAll(async () => {
    registry = await startNpmRegistry([node22.file, npm.file, cached.yarn.file, cached.ms.file]);
    git = await startGitServer();
    home = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), "slipway-docker-plans-")));
    routerPort = await testPort();
    engine = createDockerEngine({
      home,
      routerPort,
      reporter: recording.reporter,
      docker: service.docker,
      toolchains: { registry: registry.url, nodeDefault: parseNodeDefault("lts") },
      // No registry is reachable here: the image builds start from busybox with the host's glibc, and
      // their steps share the host's network, where the npm registry mirror listens on its loopback.
      builds: { buildImage: await service.glibcImage(), buildNetwork: "host" },
      tuning: { drainTimeoutMs: 1_000, stopGraceMs: 2_000, supervisionMs: 300 },
    });
    await engine.start();
  }, 120_000);

  afterAll(async () => {
    await engine?.shutdown().catch(() => undefined);
    if (home) {
      await killProcessesUnder(home);
      await fs.rm(home, { recursive: true, force: true });
    }
    await git?.close();
    await registry?.close();
    await service?.stop();
    for (const id of ids) await fs.rm(path.join(DOWNLOAD_CACHES, `slipway-${id}`), { recursive: true, force: true });
  });

  // Podman keeps each service's download cache mount on its host (/var/tmp/buildah-cache), beyond its own directory: removed after the tests.
  const ids: string[] = [];
  const spec = (name: string, config: Record<string, unknown> = {}) =>
    applicationServiceSpec.parse({
      id: ids[ids.push(randomUUID()) - 1],
      name,
      kind: "APPLICATION",
      config: { git: { url: git.url(name) }, healthCheckTimeoutSeconds: 20, ...config },
      variables: [],
      domains: [`${name}-test.localhost`],
    });

  async function deploy(app: ApplicationServiceSpec, noCache = false) {
    const plain = task("DEPLOY", [app]);
    const deployment = noCache ? { ...plain, snapshot: { ...plain.snapshot, noCache: true } } : plain;
    await engine.execute(deployment);
    const log = recording.lines
      .filter((line) => line.stream.kind === "deployment" && line.stream.deploymentId === deployment.deploymentId)
      .map((line) => line.text);
    return { final: recording.final(deployment.deploymentId), events: recording.eventsOf(deployment.deploymentId), log };
  }

  /** The plan the local runtime decides for the same repository and settings: it reads a checkout with the same function. */
  async function localPlan(app: ApplicationServiceSpec): Promise<string> {
    const checkout = await fs.mkdtemp(path.join(home, "plan-"));
    await run("git", ["clone", "--quiet", app.config.git.url, checkout]);
    try {
      return describePlan(await servicePlan(checkout, await appDirectory(checkout, app.config.git.rootDirectory), app));
    } finally {
      await fs.rm(checkout, { recursive: true, force: true });
    }
  }

  it("builds a yarn app with its lockfile and build step on the engine's Node and yarn, and serves it", async () => {
    // A lockfile as yarn 1 writes it against the public registry: the engine points it at its mirror.
    const lock = (await fs.readFile(path.join(fixture("yarn-classic"), "yarn.lock"), "utf8")).replaceAll(
      /http:\/\/127\.0\.0\.1:\d+/g,
      "https://registry.yarnpkg.com",
    );
    expect(lock).toContain("https://registry.yarnpkg.com/");
    // In a container, the published port reaches the container's own interface, not its loopback: the app listens on all of them, as apps in images do.
    const server = (await fs.readFile(path.join(fixture("yarn-classic"), "server.js"), "utf8")).replace(
      'server.listen(Number(process.env.PORT), "127.0.0.1")',
      "server.listen(Number(process.env.PORT))",
    );
    expect(server).toContain("server.listen(Number(process.env.PORT))");
    await git.createRepo("yarnapp", fixture("yarn-classic"), { "yarn.lock": lock, "server.js": server });
    const app = spec("yarnapp", { healthCheckPath: "/health" });

    const { final, events, log } = await deploy(app);
    expect(final?.status, log.join("\n")).toBe("succeeded");
    expect(events.map((event) => `${event.step}:${event.status}`)).toEqual([
      "deployment:started",
      ...["clone", "build", "start", "health_check", "switch", "drain"].flatMap((step) => [`${step}:started`, `${step}:succeeded`]),
      "deployment:succeeded",
    ]);
    // The plan, the toolchains and the steps as the local runtime shows them.
    const plan = await localPlan(app);
    expect(plan).toMatch(/^detected Node: `yarn install --frozen-lockfile.*`, then `yarn run build`; start `yarn start`/);
    expect(log).toContain(plan);
    expect(log).toContain(`Node ${node22.version} (no version named: the current LTS), npm ${npm.version}, installed from ${registry.url}`);
    expect(log).toContain(`Package manager: yarn ${cached.yarn.version} (from yarn.lock), installed from ${registry.url}`);
    expect(log.some((line) => line.startsWith("yarn.lock: its resolved URLs (") && line.includes(`now point at ${registry.url}`))).toBe(true);
    // The engine's own lines name each step as it starts (yarn prints the scripts it runs with a `$` too: those are stdout).
    const steps = recording.lines.filter((line) => line.fd === "system" && line.text.startsWith("$ ")).map((line) => line.text);
    expect(steps).toEqual([expect.stringMatching(/^\$ yarn install --frozen-lockfile/), "$ yarn run build"]);
    expect(log.some((line) => line.startsWith(`built by yarn/${cached.yarn.version}`))).toBe(true);
    // The builder's own instruction lines stay out of the log.
    expect(log.some((line) => line.includes("::slipway-step::") || line.startsWith("STEP "))).toBe(false);

    const response = await get(routerPort, "yarnapp-test.localhost");
    expect(response.status).toBe(200);
    const answer = JSON.parse(response.body) as { app: string; node: string; inADay: number; built: { userAgent: string; tookLong: string } };
    expect(answer).toMatchObject({ app: "slipway-fixture-yarn-classic", node: `v${node22.version}`, inADay: 86_400_000, built: { tookLong: "2m" } });
    expect(answer.built.userAgent).toMatch(
      new RegExp(`^yarn/${cached.yarn.version.replaceAll(".", "\\.")} npm/\\? node/v${node22.version.replaceAll(".", "\\.")}`),
    );

    // An unchanged commit and plan: the image is reused.
    const again = await deploy(app);
    expect(again.final?.status).toBe("succeeded");
    expect(again.events.find((event) => event.step === "build" && event.status === "succeeded")?.message).toMatch(/^unchanged: reusing image /);

    // The install's files went in first, and its downloads to the service's own cache mount (Podman's builder keeps it under its temporary directory).
    expect(log).toContain(
      "Image layers: dependencies installed from package.json, yarn.lock before the rest of the source goes in: a commit that changes none of them reuses the install",
    );
    const downloads = path.join(DOWNLOAD_CACHES, `slipway-${app.id}`);
    expect((await fs.readdir(downloads)).some((entry) => entry.startsWith("v6"))).toBe(true);

    // A new commit that changes a source file only: the install is the image cache's, the build runs, the new code answers.
    await git.pushDirectory("yarnapp", fixture("yarn-classic"), {
      "yarn.lock": lock,
      "server.js": server.replace("app: require", "edited: true, app: require"),
    });
    const changed = await deploy(app);
    expect(changed.final?.status, changed.log.join("\n")).toBe("succeeded");
    expect(changed.log).toContain("install: unchanged, reused from the image cache (`yarn install --frozen-lockfile --production=false`)");
    expect(changed.log.some((line) => line.startsWith("$ yarn install") || line.includes("Resolving packages"))).toBe(false);
    expect(changed.log).toContain("$ yarn run build");
    const edited = JSON.parse((await get(routerPort, "yarnapp-test.localhost")).body) as { edited?: boolean; inADay: number };
    expect(edited).toMatchObject({ edited: true, inADay: 86_400_000 });

    // Without the build cache: the same commit built afresh, its install run again.
    const fresh = await deploy(app, true);
    expect(fresh.final?.status, fresh.log.join("\n")).toBe("succeeded");
    expect(fresh.log).toContain("Build cache: skipped (--no-cache): no image, layer or download cache is reused");
    expect(fresh.log.some((line) => line.startsWith("$ yarn install"))).toBe(true);
    expect(fresh.log.some((line) => line.startsWith("install: unchanged"))).toBe(false);
  }, 300_000);

  it("serves a plain HTML site with the engine's static server in its image", async () => {
    await git.createRepo("site", fixture("static-site"));
    const app = spec("site");
    const { final, log } = await deploy(app);
    expect(final?.status, log.join("\n")).toBe("succeeded");
    expect(log).toContain(await localPlan(app));
    expect(log).toContain("detected static HTML: nothing to build; serve the app's files (because index.html at the app's root, no package.json)");
    expect(log).toContain(`Static server: Node ${node22.version} (no version named: the current LTS), npm ${npm.version}`);

    const page = await get(routerPort, "site-test.localhost");
    expect(page.status).toBe(200);
    expect(page.body).toContain("Hello from a static site");
    // The static server's answers: revalidated HTML, a real 404 for a missing file.
    expect(page.headers["cache-control"]).toBe("no-cache");
    const missingFile = await get(routerPort, "site-test.localhost", "/missing.txt");
    expect(missingFile.status).toBe(404);
    expect(missingFile.body).toBe("not found\n");
    // Compressed for a client that accepts it (a page without a length; sirv's files under 512 bytes are sent as they are).
    const compressed = await get(routerPort, "site-test.localhost", "/missing.txt", "gzip");
    expect(compressed.headers["content-encoding"]).toBe("gzip");
  }, 300_000);

  it("names the step that failed, with its command, exit code and last lines", async () => {
    await git.createRepo("broken", fixture("broken-build"));
    const app = spec("broken");
    const { final, events } = await deploy(app);
    expect(final?.status).toBe("failed");
    const failed = events.find((event) => event.status === "failed" && event.serviceId);
    expect(failed?.step).toBe("build");
    expect(failed?.message).toMatch(/^build command `npm run build` failed \(exit 1\); its last lines:\n/);
    expect(failed?.message).toContain("error: cannot find module './missing'");
  }, 300_000);
});
