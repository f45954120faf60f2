import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { engineHome, eventually, service, task } from "../test/engine-harness";
import { appPid } from "../test/support/app-process";
import { type GitServer, startGitServer } from "../test/git-server";
import type { Engine } from "./core";
import type { EngineTask } from "./protocol";
import { layout, serviceState } from "./runtime/local/layout";
import { ProcessRecords } from "./runtime/local/process-records";
import { isSameProcessAlive } from "./runtime/local/processes";

/**
 * Sleep when idle (issue 16) and an engine killed halfway through it. Falling asleep (and a STOP)
 * saves "sleeping" ("stopped") before it stops the release, and waking starts the release before
 * it saves "running": an engine SIGKILLed in between leaves a process its state does not say runs.
 * The next engine must stop it, not leave it running untracked (its port, its memory) while the
 * router takes the service for asleep, and the service must wake on its next request as usual.
 *
 * The engine that is killed runs as its own process (test/support/sleep-kill-engine.ts); the app
 * takes its time over a SIGTERM, so the kill lands while the engine waits for it to stop. It runs
 * unsandboxed, as on a host without bubblewrap (the sandboxed stop is local-engine.sandbox-stop.test.ts's).
 */
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Ignores SIGTERM (the engine's stop then lasts its whole grace period) and, with SLOW_START, waits before it listens. */
const SLOW_APP = `
const http = require("node:http");
const instance = require("node:crypto").randomUUID();
console.log("starting " + instance);
setTimeout(() => {
  http
    .createServer((req, res) => res.end(req.url === "/health" ? "ok" : JSON.stringify({ instance })))
    .listen(Number(process.env.PORT), "127.0.0.1", () => console.log("listening on " + process.env.PORT));
}, Number(process.env.SLOW_START ?? 0));
process.on("SIGTERM", () => console.log("SIGTERM: finishing up, slowly"));
`;

type KilledEngine = { child: ChildProcess; lines: () => string[]; outcome: (deploymentId: string) => string | undefined; output: () => string };

describe("local engine: an engine killed while a service falls asleep, wakes or stops", () => {
  let git: GitServer;
  let appDir: string;
  let env: Awaited<ReturnType<typeof engineHome>>;
  let engine: Engine | null = null;
  let killed: KilledEngine | null = null;
  const id = "7c2e9a4b-1d3f-4b8e-a6c5-2f9d0e1b3a47";
  const host = "sleepy-test.localhost";
  const sleepy = (slowStartMs = 0) =>
    service({
      id,
      name: "sleepy",
      variables: [{ key: "SLOW_START", value: String(slowStartMs), secret: false }],
      config: { git: { url: git.url("sleepy") }, startCommand: "exec node server.js", healthCheckPath: "/health", sleepAfterMinutes: 4 },
    });
  /** A trusted cluster's: the engines here cannot sandbox (see above), and run apps without one only for such a cluster. */
  const unsandboxedDeploy = (spec: ReturnType<typeof sleepy>): EngineTask => ({ ...task("DEPLOY", [spec]), trusted: true });
  const savedState = async () => serviceState.parse(JSON.parse(await fs.readFile(layout(env.home).stateFile(id), "utf8")));
  /** The service's processes with a record that are still running (the records: engine/runtime/local/process-records.ts). */
  const runningProcesses = () => new ProcessRecords(layout(env.home)).list(id).filter((proc) => isSameProcessAlive(proc.pid, proc.startTime));

  /** An engine of this home as its own process, which the test SIGKILLs; it runs `tasks` once started. */
  function spawnKilledEngine(tuning: { drainTimeoutMs: number; stopGraceMs: number; sleepMinuteMs: number }, tasks: EngineTask[]): KilledEngine {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(repoRoot, "test/support/sleep-kill-engine.ts")], {
      cwd: repoRoot,
      env: { ...process.env, SLIPWAY_SLEEP_KILL_ENGINE: JSON.stringify({ home: env.home, routerPort: env.routerPort, tuning, unsandboxed: true, tasks }) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const entries = () =>
      output.split("\n").flatMap((line) => {
        try {
          return [JSON.parse(line) as { line?: string; deploymentId?: string; step?: string; outcome?: string }];
        } catch {
          return [];
        }
      });
    return {
      child,
      output: () => output,
      lines: () => entries().flatMap((entry) => entry.line ?? []),
      outcome: (deploymentId) => entries().find((entry) => entry.deploymentId === deploymentId && entry.step === "deployment")?.outcome,
    };
  }

  async function sigkill(target: KilledEngine): Promise<void> {
    const exited = new Promise((resolve) => target.child.once("exit", resolve));
    target.child.kill("SIGKILL");
    await exited;
  }

  beforeAll(async () => {
    git = await startGitServer();
    appDir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-sleep-kill-app-"));
    await fs.writeFile(
      path.join(appDir, "package.json"),
      JSON.stringify({ name: "sleepy", version: "1.0.0", private: true, scripts: { start: "node server.js" } }),
    );
    await fs.writeFile(path.join(appDir, "server.js"), SLOW_APP);
    await git.createRepo("sleepy", appDir);
    // The engines made in the test's process stop an app within a second; a "minute" lasts 5 s, so it does not fall asleep under the test's checks.
    env = await engineHome({
      drainTimeoutMs: 2_000,
      stopGraceMs: 1_000,
      sleepMinuteMs: 5_000,
      sandbox: Promise.resolve({ kind: "none", reason: "as the killed engine" }),
    });
  });

  afterEach(async () => {
    if (killed) await sigkill(killed);
    killed = null;
    await engine?.shutdown();
    engine = null;
  });

  afterAll(async () => {
    await env?.cleanup();
    await git?.close();
    if (appDir) await fs.rm(appDir, { recursive: true, force: true });
  });

  it("stops the instance an engine killed while it fell asleep left running, and wakes the service on the next request", { timeout: 90_000 }, async () => {
    // Its stop would take a minute (a "minute" of `sleepAfterMinutes` lasts 500 ms): the engine is killed while it waits for it.
    const deploy = unsandboxedDeploy(sleepy());
    killed = spawnKilledEngine({ drainTimeoutMs: 2_000, stopGraceMs: 60_000, sleepMinuteMs: 500 }, [deploy]);
    await eventually(() => killed!.outcome(deploy.deploymentId), 60_000, "the deploy's outcome");
    expect(killed.outcome(deploy.deploymentId), killed.output()).toBe("succeeded");
    const { current } = await savedState();
    await eventually(() => killed!.lines().some((line) => line.startsWith("SIGTERM")), 15_000, "the engine to start stopping the app to put it to sleep");
    await sigkill(killed);
    killed = null;
    // What the killed engine left: a state that says asleep, and the app still running on its port.
    expect((await savedState()).status).toBe("sleeping");
    expect(runningProcesses().map((proc) => proc.pid)).toEqual([current!.pid]);
    const leftPid = appPid(current!.port);

    engine = env.newEngine();
    await engine.start();
    expect(engine.services().find((entry) => entry.serviceId === id)?.state).toBe("sleeping");
    expect(runningProcesses()).toEqual([]);
    expect(() => appPid(current!.port)).toThrow(/nothing listens/);
    expect(env.lines.map((line) => line.text)).toContainEqual(expect.stringContaining(`stopped pid ${current!.pid}`));

    // The next request wakes it: one instance, the one the engine tracks.
    const woken = await env.get(host);
    expect(woken.status).toBe(200);
    const live = engine.services().find((entry) => entry.serviceId === id);
    expect(live?.state).toBe("running");
    expect(runningProcesses()).toHaveLength(1);
    expect(appPid(live?.port)).not.toBe(leftPid);
  });

  it("stops the instance an engine killed while it woke the service had started, and wakes it on the next request", { timeout: 90_000 }, async () => {
    // Every instance waits 2 s before it listens: the engine is killed while it checks the woken one.
    const slow = unsandboxedDeploy(sleepy(2_000));
    killed = spawnKilledEngine({ drainTimeoutMs: 2_000, stopGraceMs: 500, sleepMinuteMs: 500 }, [slow]);
    await eventually(() => killed!.outcome(slow.deploymentId), 60_000, "the deploy's outcome");
    expect(killed.outcome(slow.deploymentId), killed.output()).toBe("succeeded");
    await eventually(async () => (await savedState()).status === "sleeping" && runningProcesses().length === 0, 15_000, "the service to fall asleep");
    const starts = killed.lines().filter((line) => line.startsWith("starting")).length;
    // Held by the router until some engine wakes the service; its answer is not what this test is about.
    const held = env.get(host).catch(() => null);
    await eventually(() => killed!.lines().filter((line) => line.startsWith("starting")).length > starts, 15_000, "the woken instance to start");
    await sigkill(killed);
    killed = null;
    // What the killed engine left: a state that says asleep, and the instance it was waking running.
    expect((await savedState()).status).toBe("sleeping");
    expect(runningProcesses()).toHaveLength(1);

    engine = env.newEngine();
    await engine.start();
    await held;
    const woken = await env.get(host);
    expect(woken.status).toBe(200);
    const live = engine.services().find((entry) => entry.serviceId === id);
    expect(live?.state).toBe("running");
    // One instance: the one the engine tracks.
    const [proc, ...more] = runningProcesses();
    expect(more).toEqual([]);
    expect(proc?.pid).toBe((await savedState()).current?.pid);
    expect(appPid(live?.port)).toBeGreaterThan(0);
  });

  it("stops the instance an engine killed while it stopped the service left running: the service stays stopped", { timeout: 60_000 }, async () => {
    const { current } = await savedState();
    expect(runningProcesses().map((proc) => proc.pid)).toEqual([current!.pid]);
    // A "minute" of four minutes: the service does not fall asleep before the STOP.
    const stop = task("STOP", [sleepy(2_000)]);
    killed = spawnKilledEngine({ drainTimeoutMs: 2_000, stopGraceMs: 60_000, sleepMinuteMs: 240_000 }, [stop]);
    await eventually(() => killed!.lines().some((line) => line.startsWith("SIGTERM")), 15_000, "the engine to start stopping the app");
    await sigkill(killed);
    killed = null;
    expect((await savedState()).status).toBe("stopped");
    expect(runningProcesses().map((proc) => proc.pid)).toEqual([current!.pid]);

    engine = env.newEngine();
    await engine.start();
    expect(runningProcesses()).toEqual([]);
    expect(() => appPid(current!.port)).toThrow(/nothing listens/);
    expect(engine.services().find((entry) => entry.serviceId === id)?.state).toBe("stopped");
    expect((await env.get(host)).status).toBe(503);
  });
});
