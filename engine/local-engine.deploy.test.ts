import fs from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineHome, eventually, fixture, service, task } from "../test/engine-harness";
import { type GitServer, startGitServer } from "../test/git-server";
import type { Engine } from "./core";
import { appPid } from "../test/support/app-process";
import { processStartTime } from "./runtime/local/processes";
import { layout } from "./runtime/local/layout";

const SECRET = "tok-5ecret-value-123";
/** The sample app, listening only after 1.5 s as a large app does (and crashing if its port is taken meanwhile). */
const SLOW_TO_LISTEN = `
const http = require("node:http");
const version = require("node:fs").readFileSync("version.txt", "utf8").trim();
const server = http.createServer((req, res) => {
  if (req.url === "/health") return res.end("ok");
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ version, greeting: process.env.GREETING ?? null }));
});
setTimeout(() => server.listen(Number(process.env.PORT), "127.0.0.1", () => console.log("listening on " + process.env.PORT)), 1500);
process.on("SIGTERM", () => server.close(() => process.exit(0)));
`;

describe("local engine: deploying from git", () => {
  let git: GitServer;
  let env: Awaited<ReturnType<typeof engineHome>>;
  let engine: Engine;
  let firstCommit: string;
  const web = () =>
    service({
      id: "5b0ee3a2-8f7e-4a5c-9d51-0c1f6f1b2a01",
      name: "web",
      config: { git: { url: git.url("shop") }, healthCheckPath: "/health", healthCheckTimeoutSeconds: 3 },
      variables: [
        { key: "GREETING", value: "hello", secret: false },
        { key: "API_TOKEN", value: SECRET, secret: true },
      ],
    });
  const deploymentOutput = (deploymentId: string) =>
    env.lines.filter((line) => line.stream.kind === "deployment" && line.stream.deploymentId === deploymentId).map((line) => line.text);
  /**
   * Deploys `serverJs` (an app slow to listen) and, once the engine says which port it started it
   * on, has `squatter` take that port first, as another process on the host could.
   */
  const deployOntoTakenPort = async (serverJs: string, squatter: net.Server) => {
    await git.pushDirectory("shop", fixture("node-app"), { "version.txt": "2\n", "server.js": serverJs });
    const deploy = task("DEPLOY", [web()]);
    const running = engine.execute(deploy);
    const started = (text: string) => /^Started .* on port (\d+)$/.exec(text)?.[1];
    const chosen = await eventually(() => deploymentOutput(deploy.deploymentId).map(started).find(Boolean), 10_000, "the release started");
    await new Promise<void>((resolve) => squatter.listen({ host: "127.0.0.1", port: Number(chosen), exclusive: true }, resolve));
    return { deploy, running, chosen };
  };
  const version = async () => {
    const response = await env.get("web-test.localhost");
    if (response.status !== 200) throw new Error(`router answered ${response.status}: ${response.body}`);
    return JSON.parse(response.body) as { version: string; greeting: string; pid: number };
  };

  beforeAll(async () => {
    git = await startGitServer();
    firstCommit = await git.createRepo("shop", fixture("node-app"));
    env = await engineHome();
    engine = env.newEngine();
    await engine.start();
  });

  afterAll(async () => {
    await env?.cleanup();
    await git?.close();
  });

  it("clones over HTTP, builds, starts and serves the app through the router", async () => {
    const deploy = task("DEPLOY", [web()]);
    await engine.execute(deploy);
    const events = env.eventsOf(deploy.deploymentId).map((event) => `${event.step}:${event.status}`);
    expect(events).toEqual([
      "deployment:started",
      ...["clone", "build", "start", "health_check", "switch", "drain"].flatMap((step) => [`${step}:started`, `${step}:succeeded`]),
      "deployment:succeeded",
    ]);
    expect(env.eventsOf(deploy.deploymentId).find((event) => event.step === "clone" && event.status === "succeeded")?.commit).toBe(firstCommit);
    expect(await version()).toMatchObject({ version: "1", greeting: "hello" });
    expect(engine.services()).toEqual([expect.objectContaining({ serviceId: web().id, state: "running", restarts: 0, commit: firstCommit })]);
    const buildLines = env.lines.filter((line) => line.stream.kind === "deployment").map((line) => line.text);
    // The service names no branch: the repository's default one is cloned.
    expect(buildLines).toContain(`Cloning ${git.url("shop")} at its default branch`);
  });

  it("masks secret values in build and runtime output", async () => {
    const runtimeLine = await eventually(
      () => env.lines.find((line) => line.stream.kind === "service" && line.text.includes("listening")),
      5_000,
      "runtime log",
    );
    expect(runtimeLine.text).toContain("with token ****");
    expect(env.lines.some((line) => line.text.includes(SECRET))).toBe(false);
  });

  it("treats a re-delivered task as done: same outcome, no second release", async () => {
    const deploy = task("DEPLOY", [web()]);
    const first = engine.execute(deploy);
    expect(engine.execute(deploy)).toBe(first);
    expect(engine.activeDeployments()).toEqual([deploy.deploymentId]);
    await first;
    const releases = await fs.readdir(`${layout(env.home).serviceDir(web().id)}/releases`);
    const before = env.eventsOf(deploy.deploymentId).length;
    await engine.execute(deploy);
    const replayed = env.eventsOf(deploy.deploymentId).slice(before);
    expect(replayed).toEqual([expect.objectContaining({ serviceId: null, step: "deployment", status: "succeeded" })]);
    // The same event as the first time, seq included: the control plane stores it once.
    expect(replayed[0]).toEqual(env.eventsOf(deploy.deploymentId)[before - 1]);
    expect(replayed[0]?.seq).toEqual(expect.any(Number));
    expect(await fs.readdir(`${layout(env.home).serviceDir(web().id)}/releases`)).toEqual(releases);
  });

  it("redeploys a new commit with zero failed requests under a steady request loop", async () => {
    const before = appPid(engine.services()[0]?.port);
    const commit = await git.pushDirectory("shop", fixture("node-app"), { "version.txt": "2\n" });
    const failures: string[] = [];
    let served = 0;
    let looping = true;
    const loop = (async () => {
      while (looping) {
        try {
          const response = await env.get("web-test.localhost");
          if (response.status === 200) served += 1;
          else failures.push(`${response.status} ${response.body}`);
        } catch (error) {
          failures.push(String(error));
        }
        await sleep(20);
      }
    })();
    const deploy = task("DEPLOY", [web()]);
    await engine.execute(deploy);
    await sleep(200);
    looping = false;
    await loop;
    expect(env.final(deploy.deploymentId)?.status).toBe("succeeded");
    expect(failures).toEqual([]);
    expect(served).toBeGreaterThan(10);
    const after = await version();
    expect(after.version).toBe("2");
    expect(engine.services()[0]?.commit).toBe(commit);
    // The old release was drained and stopped.
    expect(processStartTime(before)).toBeNull();
  });

  it("fails at build on a broken build and keeps the previous release serving", async () => {
    await git.pushDirectory("shop", fixture("broken-build"));
    const deploy = task("DEPLOY", [web()]);
    await engine.execute(deploy);
    const failed = env.eventsOf(deploy.deploymentId).find((event) => event.status === "failed" && event.serviceId);
    // The failure says why in the build's own last lines, with secrets masked as in the logs.
    expect(failed?.step).toBe("build");
    expect(failed?.message).toMatch(/^build command `npm run build` failed \(exit 1\); its last lines:\n/);
    expect(failed?.message).toMatch(/\nbuilding with token \*\*\*\*\nerror: cannot find module '\.\/missing'$/);
    expect(env.final(deploy.deploymentId)).toMatchObject({ status: "failed", message: expect.stringContaining("build failed") });
    const output = env.lines.filter((line) => line.stream.kind === "deployment" && line.stream.deploymentId === deploy.deploymentId).map((line) => line.text);
    expect(output).toContain("error: cannot find module './missing'");
    expect(output).toContain("building with token ****");
    expect((await version()).version).toBe("2");
  });

  it("names a build tool missing from the engine's host", async () => {
    const missing = { ...web(), config: { ...web().config, buildCommand: "slipway-no-such-tool --build" } };
    const deploy = task("DEPLOY", [missing]);
    await engine.execute(deploy);
    const failed = env.eventsOf(deploy.deploymentId).find((event) => event.status === "failed" && event.serviceId);
    expect(failed).toMatchObject({ step: "build", message: expect.stringContaining("`slipway-no-such-tool --build` not found (exit 127)") });
    expect((await version()).version).toBe("2");
  });

  it("fails at health_check when the new release never gets healthy, and keeps the previous one", async () => {
    await git.pushDirectory("shop", fixture("failing-health"));
    const deploy = task("DEPLOY", [web()]);
    await engine.execute(deploy);
    const failed = env.eventsOf(deploy.deploymentId).find((event) => event.status === "failed" && event.serviceId);
    expect(failed).toMatchObject({ step: "health_check", message: expect.stringContaining("health check GET /health did not answer 2xx within 3s") });
    expect(env.eventsOf(deploy.deploymentId).some((event) => event.step === "switch")).toBe(false);
    expect((await version()).version).toBe("2");
  });

  it("says why a release that crashes at start failed its health check, in its own last lines", async () => {
    const crash = 'console.log("connecting to the database");\nconsole.error("Error: DATABASE_URL is not set");\nprocess.exit(1);\n';
    await git.pushDirectory("shop", fixture("node-app"), { "server.js": crash });
    const deploy = task("DEPLOY", [web()]);
    await engine.execute(deploy);
    const failed = env.eventsOf(deploy.deploymentId).find((event) => event.status === "failed" && event.serviceId);
    expect(failed?.step).toBe("health_check");
    expect(failed?.message).toMatch(
      /^start command `npm start`: .*exited with code 1 before it became healthy; its last output:\n.*connecting to the database\nError: DATABASE_URL is not set/s,
    );
    expect((await version()).version).toBe("2");
  });

  it("starts a release again on another port when another process takes its port before the app listens", async () => {
    // Another process on the host takes the port while the app is still starting up (and speaks no HTTP).
    const squatter = net.createServer((socket) => socket.destroy());
    const { deploy, running, chosen } = await deployOntoTakenPort(SLOW_TO_LISTEN, squatter);
    try {
      await running;
      expect(env.final(deploy.deploymentId)).toMatchObject({ status: "succeeded" });
      const moved = deploymentOutput(deploy.deploymentId).find((text) => text.startsWith(`Port ${chosen} was taken by another process`));
      const port = Number(/ on port (\d+)$/.exec(moved ?? "")?.[1]);
      expect(port).not.toBe(Number(chosen));
      expect(engine.services()[0]?.port).toBe(port);
      expect((await version()).version).toBe("2");
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  it("names the process holding the port when a release that survives losing it never gets healthy", async () => {
    // An app that logs the bind error and lives on (frameworks that catch it do), behind a squatter that answers 200.
    const survivor = SLOW_TO_LISTEN.replace(
      "setTimeout(",
      'server.on("error", (error) => console.error(error.code));\nsetInterval(() => {}, 1000);\nsetTimeout(',
    );
    const squatter = http.createServer((_req, res) => res.end("not the release"));
    const { deploy, running, chosen } = await deployOntoTakenPort(survivor, squatter);
    try {
      await running;
      const failed = env.eventsOf(deploy.deploymentId).find((event) => event.status === "failed" && event.serviceId);
      expect(failed?.step).toBe("health_check");
      expect(failed?.message).toContain(
        `did not answer 2xx within 3s (last status 200); port ${chosen} is held by another process on the engine's host (pid ${process.pid}), not the release`,
      );
      expect((await version()).version).toBe("2");
    } finally {
      squatter.closeAllConnections();
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  it("cancels during a slow build, kills the build and keeps the previous release", async () => {
    await git.pushDirectory("shop", fixture("node-app"), { "version.txt": "3\n" });
    const slow = { ...web(), config: { ...web().config, buildCommand: "echo building slowly; sleep 30" } };
    const deploy = task("DEPLOY", [slow]);
    const running = engine.execute(deploy);
    await eventually(() => env.lines.some((line) => line.text === "building slowly"), 10_000, "slow build running");
    const canceledAt = Date.now();
    engine.cancel(deploy.deploymentId);
    await running;
    expect(Date.now() - canceledAt).toBeLessThan(3_000);
    expect(
      env
        .eventsOf(deploy.deploymentId)
        .filter((event) => event.status === "canceled")
        .map((event) => event.step),
    ).toEqual(["build", "deployment"]);
    expect(engine.activeDeployments()).toEqual([]);
    expect((await version()).version).toBe("2");
  });

  it("deploys an exact commit", async () => {
    const deploy = task("DEPLOY", [{ ...web(), config: { ...web().config, git: { ...web().config.git, ref: { commit: firstCommit.slice(0, 12) } } } }]);
    await engine.execute(deploy);
    expect(env.final(deploy.deploymentId)?.status).toBe("succeeded");
    expect(env.eventsOf(deploy.deploymentId).find((event) => event.step === "clone" && event.status === "succeeded")?.commit).toBe(firstCommit);
    expect((await version()).version).toBe("1");
  });

  it("answers 404 for a host no service has", async () => {
    const response = await env.get("nothing-here.localhost");
    expect(response.status).toBe(404);
    expect(response.body).toContain("nothing-here.localhost");
  });
});
