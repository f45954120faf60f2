import fs from "node:fs/promises";
import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineHome, eventually, fixture, recordingReporter, service, supervisionPasses, task } from "../test/engine-harness";
import { appPid } from "../test/support/app-process";
import { skipWithout } from "../test/support/requirements";
import { type GitServer, startGitServer } from "../test/git-server";
import type { Engine } from "./core";
import { processStartTime } from "./runtime/local/processes";
import { layout, serviceState } from "./runtime/local/layout";

function pythonVenvWorks(): boolean {
  try {
    execFileSync("python3", ["-c", "import venv"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

describe("local engine: running, crashing, adopting, stopping, deleting", () => {
  let git: GitServer;
  let env: Awaited<ReturnType<typeof engineHome>>;
  let engine: Engine;
  const api = () => service({ id: "7d7c1f0e-64a4-4f0b-8f5e-3a4cf0d1b002", name: "api", config: { git: { url: git.url("api") } } });
  const answer = async () => JSON.parse((await env.get("api-test.localhost")).body) as { version: string; pid: number };
  /** The app's pid as this host sees it (inside its sandbox it is pid 2). */
  const apiPid = () => appPid(engine.services()[0]?.port);
  const readState = async () => serviceState.parse(JSON.parse(await fs.readFile(layout(env.home).stateFile(api().id), "utf8")));

  beforeAll(async () => {
    git = await startGitServer();
    await git.createRepo("api", fixture("node-app"));
    env = await engineHome({ drainTimeoutMs: 3_000, stopGraceMs: 3_000, backoffBaseMs: 500 });
    engine = env.newEngine();
    await engine.start();
    const deploy = task("DEPLOY", [api()]);
    await engine.execute(deploy);
    expect(env.final(deploy.deploymentId)?.status).toBe("succeeded");
  });

  afterAll(async () => {
    await env?.cleanup();
    await git?.close();
  });

  it("restarts a crashed app with backoff and counts the restart", async () => {
    const before = apiPid();
    process.kill(before, "SIGKILL");
    await eventually(() => engine.services()[0]?.state === "crashed", 5_000, "crash noticed");
    await eventually(async () => (await env.get("api-test.localhost")).status === 200, 10_000, "served again");
    const after = apiPid();
    expect(after).not.toBe(before);
    expect(engine.services()[0]).toMatchObject({ state: "running", restarts: 1 });
    expect((await readState()).restarts).toBe(1);
    expect(env.lines.some((line) => line.stream.kind === "service" && line.text.includes("restarting in 0.5s"))).toBe(true);

    // A second crash soon after waits twice as long.
    process.kill(after, "SIGKILL");
    await eventually(() => env.lines.some((line) => line.text.includes("restarting in 1s")), 5_000, "doubled backoff");
    await eventually(() => engine.services()[0]?.state === "running" && engine.services()[0]?.restarts === 2, 10_000, "second restart");
    await eventually(async () => (await env.get("api-test.localhost")).status === 200, 10_000, "served again");
  });

  it("lets a new engine adopt the running release without restarting it or repeating its logs", async () => {
    const running = apiPid();
    await eventually(() => env.lines.filter((line) => line.text.includes("listening")).length === 3, 5_000, "runtime logs read");
    await engine.shutdown();
    // Apps keep serving while no engine runs.
    expect((await env.get("api-test.localhost")).status).toBe(200);
    expect(apiPid()).toBe(running);

    const second = recordingReporter();
    engine = env.newEngine(second.reporter);
    await engine.start();
    expect(engine.services()[0]).toMatchObject({ state: "running", restarts: 2 });
    // The new engine's supervisor looked at the adopted process and left it running.
    await supervisionPasses(engine, 2);
    expect(apiPid()).toBe(running);
    expect(second.lines.filter((line) => line.text.includes("listening"))).toEqual([]);

    // The adopted process is supervised too.
    process.kill(running, "SIGKILL");
    await eventually(() => engine.services()[0]?.restarts === 3 && engine.services()[0]?.state === "running", 10_000, "adopted restart");
    await eventually(() => second.lines.some((line) => line.text.includes("listening")), 10_000, "new process logs");
    env.lines.push(...second.lines);
    env.events.push(...second.events);
    // Let the rest of the suite assert through the shared recording, with one engine: a second one
    // still supervising would take the STOP below for a crash and start the app again.
    await engine.shutdown();
    engine = env.newEngine();
    await engine.start();
  });

  it("stops: the router answers 503; restart and deploy bring it back", async () => {
    const stop = task("STOP", [api()]);
    await engine.execute(stop);
    expect(env.eventsOf(stop.deploymentId).map((event) => `${event.step}:${event.status}`)).toEqual([
      "deployment:started",
      "stop:started",
      "stop:succeeded",
      "deployment:succeeded",
    ]);
    const stopped = await env.get("api-test.localhost");
    expect(stopped.status).toBe(503);
    expect(stopped.body).toContain("api");
    expect(engine.services()[0]?.state).toBe("stopped");
    // Its supervisor looks again and again, and does not take the stop for a crash.
    await supervisionPasses(engine, 2);
    expect(engine.services()[0]?.state).toBe("stopped");

    const restart = task("RESTART", [api()]);
    await engine.execute(restart);
    expect(env.final(restart.deploymentId)?.status).toBe("succeeded");
    expect((await env.get("api-test.localhost")).status).toBe(200);

    await git.pushDirectory("api", fixture("node-app"), { "version.txt": "2\n" });
    const deploy = task("DEPLOY", [api()]);
    await engine.execute(deploy);
    expect((await answer()).version).toBe("2");
  });

  it("deletes: the route is gone (404) and so are the service's directories", async () => {
    const pid = apiPid();
    const remove = task("DELETE", [api()]);
    await engine.execute(remove);
    expect(env.final(remove.deploymentId)?.status).toBe("succeeded");
    expect((await env.get("api-test.localhost")).status).toBe(404);
    await expect(fs.access(layout(env.home).serviceDir(api().id))).rejects.toThrow();
    expect(processStartTime(pid)).toBeNull();
    expect(engine.services()).toEqual([]);
  });

  it("serves a static site with the engine's static server", async () => {
    await git.createRepo("site", fixture("static-site"));
    const site = service({ name: "site", config: { git: { url: git.url("site") } } });
    await engine.execute(task("DEPLOY", [site]));
    const page = await env.get("site-test.localhost");
    expect(page.body).toContain("Hello from a static site");
    expect((await env.get("site-test.localhost", "/about.txt")).body).toBe("static about page\n");
  });

  it("builds the app in the repository's root directory", async () => {
    await git.createRepo("mono", fixture("."));
    const site = service({ name: "mono", config: { git: { url: git.url("mono"), rootDirectory: "static-site" } } });
    const deploy = task("DEPLOY", [site]);
    await engine.execute(deploy);
    expect(env.final(deploy.deploymentId)?.status).toBe("succeeded");
    expect((await env.get("mono-test.localhost", "/about.txt")).body).toBe("static about page\n");
  });

  it.skipIf(skipWithout(pythonVenvWorks() ? null : "python3 with venv (apt-get install python3 python3-venv)"))(
    "builds a Python app in a virtualenv",
    async () => {
      await git.createRepo("py", fixture("python-app"));
      const py = service({ name: "py", config: { git: { url: git.url("py") } }, variables: [{ key: "GREETING", value: "hi from python", secret: false }] });
      const deploy = task("DEPLOY", [py]);
      await engine.execute(deploy);
      expect(env.final(deploy.deploymentId)?.status).toBe("succeeded");
      expect(JSON.parse((await env.get("py-test.localhost")).body)).toEqual({ python: true, greeting: "hi from python", venv: true });
    },
  );
});
