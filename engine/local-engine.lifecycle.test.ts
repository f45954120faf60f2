import fs from "node:fs/promises";
import { execFileSync } from "node:child_process";
import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineHome, eventually, fixture, recordingReporter, service, supervisionPasses, task } from "../test/engine-harness";
import { appPid } from "../test/support/app-process";
import { skipWithout } from "../test/support/requirements";
import { testToolchains } from "../test/support/toolchains";
import { type GitServer, startGitServer } from "../test/git-server";
import { createLocalEngine, type Engine } from "./core";
import { routerFiles } from "./router/router-server";
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

/** The messages an engine logs, to read what it says it did. */
function recordingLogger() {
  const messages: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString().split("\n").filter(Boolean)) messages.push((JSON.parse(text) as { msg: string }).msg);
      done();
    },
  });
  return { logger: pino({ level: "info" }, stream), messages };
}

/** The router's pid as its pid file records it. */
async function routerPid(home: string): Promise<number> {
  return (JSON.parse(await fs.readFile(routerFiles(home).pidFile, "utf8")) as { pid: number }).pid;
}

describe("local engine: running, crashing, adopting, stopping, deleting", () => {
  let git: GitServer;
  let env: Awaited<ReturnType<typeof engineHome>>;
  let engine: Engine;
  const tuning = { drainTimeoutMs: 3_000, stopGraceMs: 3_000, backoffBaseMs: 500 };
  const api = () => service({ id: "7d7c1f0e-64a4-4f0b-8f5e-3a4cf0d1b002", name: "api", config: { git: { url: git.url("api") } } });
  const answer = async () => JSON.parse((await env.get("api-test.localhost")).body) as { version: string; pid: number };
  /** The app's pid as this host sees it (inside its sandbox it is pid 2). */
  const apiPid = () => appPid(engine.services()[0]?.port);
  const readState = async () => serviceState.parse(JSON.parse(await fs.readFile(layout(env.home).stateFile(api().id), "utf8")));

  beforeAll(async () => {
    git = await startGitServer();
    await git.createRepo("api", fixture("node-app"));
    env = await engineHome(tuning);
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

  it("starts the router again when it dies, with its routes and the custom domains it missed", async () => {
    // An engine of its own, to read its log; the shared one stops meanwhile (it would restart the router too).
    await engine.shutdown();
    const { logger, messages } = recordingLogger();
    const watching = createLocalEngine({ home: env.home, routerPort: env.routerPort, reporter: env.reporter, tuning, toolchains: testToolchains, logger });
    try {
      await watching.start();
      const dead = await routerPid(env.home);
      process.kill(dead, "SIGKILL");
      await eventually(() => processStartTime(dead) === null, 5_000, "router gone");
      // Refused, or reset when the dead router's socket was still being torn down.
      await expect(env.get("api-test.localhost")).rejects.toThrow(/ECONNREFUSED|ECONNRESET/);
      // Handed while no router runs: only the engine has it, the next router must get it all the same.
      const domain = "www.api.test";
      await expect(
        watching.applyEdge!({
          domains: [
            { hostname: domain, serviceId: api().id, verified: true, verificationToken: null, redirectHttps: false, acmeChallenge: null, certificate: null },
          ],
        }),
      ).rejects.toThrow();

      await eventually(async () => (await env.get("api-test.localhost")).status === 200, 15_000, "served through a new router");
      expect((await answer()).version).toBe("2");
      await eventually(async () => (await env.get(domain)).status === 200, 5_000, "custom domain served again");
      const restarted = await routerPid(env.home);
      expect(restarted).not.toBe(dead);
      expect(messages).toContain(`the router (pid ${dead}) was gone: started it again as pid ${restarted}`);
    } finally {
      await watching.shutdown();
      // The shared engine again, for the tests after this one, whatever happened in it.
      engine = env.newEngine();
      await engine.start();
    }
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
