import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineHome, eventually, fixture, job, service, task } from "../test/engine-harness";
import { type GitServer, startGitServer } from "../test/git-server";
import type { Engine } from "./core";
import type { ServiceSpec } from "./protocol";

describe("local engine: jobs", () => {
  let git: GitServer;
  let env: Awaited<ReturnType<typeof engineHome>>;
  let engine: Engine;
  const jobSource = () => ({ url: git.url("jobs") });

  const run = async (action: Parameters<typeof task>[0], ...services: ServiceSpec[]) => {
    const t = task(action, services);
    await engine.execute(t);
    return {
      final: env.final(t.deploymentId),
      events: env.eventsOf(t.deploymentId),
      lines: env.lines.filter((line) => line.stream.kind === "deployment" && line.stream.deploymentId === t.deploymentId),
    };
  };

  beforeAll(async () => {
    git = await startGitServer();
    await git.createRepo("jobs", fixture("jobs"));
    await git.createRepo("api", fixture("node-app"));
    env = await engineHome({ drainTimeoutMs: 1_000, stopGraceMs: 3_000 });
    engine = env.newEngine();
    await engine.start();
  });

  afterAll(async () => {
    await env?.cleanup();
    await git?.close();
  });

  it("runs a lifecycle job on start before the applications, which receive its outputs, and again on stop", async () => {
    const seed = job({ name: "seed", config: { git: jobSource(), command: "sh seed.sh", trigger: { type: "lifecycle", on: ["start"] } } });
    const farewell = job({ name: "farewell", config: { git: jobSource(), command: "sh goodbye.sh", trigger: { type: "lifecycle", on: ["stop", "delete"] } } });
    const api = service({ name: "api", config: { git: { url: git.url("api") } } });

    const deployed = await run("DEPLOY", seed, farewell, api);
    expect(deployed.final).toMatchObject({ status: "succeeded" });
    const runs = deployed.events.filter((event) => event.step === "run");
    expect(runs.map((event) => [event.serviceId, event.status])).toEqual([
      [seed.id, "started"],
      [seed.id, "succeeded"],
    ]);
    expect(runs[1]?.message).toMatch(/succeeded in [\d.]+s; outputs GREETING, SEED_ROWS/);
    // The control plane learns the names the run output (it lists them with the variables), never their values.
    expect(runs[1]?.outputKeys).toEqual(["GREETING", "SEED_ROWS"]);
    expect(deployed.lines.some((line) => line.text === "seeding on start")).toBe(true);
    expect(JSON.parse((await env.get("api-test.localhost")).body)).toMatchObject({ greeting: "hello from the seed" });
    expect(engine.services().find((s) => s.serviceId === seed.id)).toMatchObject({
      state: "idle",
      lastRun: { trigger: "start", outcome: "succeeded", exitCode: 0, attempts: 1 },
    });

    // The outputs stay with the environment: the app deployed alone later still receives them.
    expect((await run("DEPLOY", api)).final).toMatchObject({ status: "succeeded" });
    expect(JSON.parse((await env.get("api-test.localhost")).body)).toMatchObject({ greeting: "hello from the seed" });

    // Stopping the environment runs the stop job (before databases would stop, after the app).
    const stopped = await run("STOP", api, farewell, seed);
    expect(stopped.final).toMatchObject({ status: "succeeded" });
    expect(stopped.events.filter((event) => event.step === "run").map((event) => [event.serviceId, event.status])).toEqual([
      [farewell.id, "started"],
      [farewell.id, "succeeded"],
    ]);
    // Outputs are secrets to the engine: masked in what it reports.
    expect(stopped.lines.map((line) => line.text)).toContain("goodbye on stop, greeting was: ****");
  });

  it("retries a failed run, times out a slow one, and rejects outputs that are not an object", async () => {
    // In the job's checkout, which its attempts share (its sandbox sees nothing of the engine's home).
    const marker = "flaky-marker";
    const flaky = job({
      name: "flaky",
      variables: [{ key: "MARKER", value: marker, secret: false }],
      config: { git: jobSource(), command: "sh flaky.sh", trigger: { type: "lifecycle", on: ["start"] }, retries: 1 },
    });
    const retried = await run("DEPLOY", flaky);
    expect(retried.final).toMatchObject({ status: "succeeded" });
    expect(retried.lines.map((line) => line.text)).toEqual(
      expect.arrayContaining(["first attempt fails", "The run exited with code 3 (attempt 1 of 2)", "second attempt"]),
    );
    expect(engine.services().find((s) => s.serviceId === flaky.id)?.lastRun).toMatchObject({ outcome: "succeeded", attempts: 2 });

    const slow = job({ name: "slow", config: { git: jobSource(), command: "sh slow.sh", trigger: { type: "lifecycle", on: ["start"] }, timeoutSeconds: 1 } });
    const timedOut = await run("DEPLOY", slow);
    expect(timedOut.final).toMatchObject({ status: "failed", message: expect.stringMatching(/slow: run failed: run \S+ timed out in/) });
    // A job whose run failed on deploy did not become the job's release.
    expect(engine.services().some((s) => s.serviceId === slow.id)).toBe(false);

    const bad = job({ name: "bad", config: { git: jobSource(), command: "sh bad-output.sh", trigger: { type: "lifecycle", on: ["start"] } } });
    const rejected = await run("DEPLOY", bad);
    expect(rejected.final).toMatchObject({ status: "failed" });
    expect(rejected.lines.map((line) => line.text)).toContain("the outputs file ($SLIPWAY_OUTPUT_FILE) must hold a JSON object");
  });

  it("runs a cron job on its schedule with its output in the service's logs, until it is stopped", async () => {
    const tick = job({
      name: "tick",
      config: { git: jobSource(), command: "sh tick.sh", trigger: { type: "cron", schedule: "* * * * * *", timeZone: "Europe/Paris" } },
    });
    expect((await run("DEPLOY", tick)).final).toMatchObject({ status: "succeeded" });
    expect(engine.services().find((s) => s.serviceId === tick.id)?.nextRunAt).toBeDefined();
    const ticks = () => env.lines.filter((line) => line.stream.kind === "service" && line.stream.serviceId === tick.id && line.text.startsWith("tick "));
    await eventually(() => ticks().length >= 2, 10_000, "two scheduled runs");
    expect(engine.services().find((s) => s.serviceId === tick.id)?.lastRun).toMatchObject({ trigger: "cron", outcome: "succeeded", exitCode: 0 });

    // The schedule survives an engine restart.
    await engine.shutdown();
    engine = env.newEngine();
    await engine.start();
    const before = ticks().length;
    await eventually(() => ticks().length > before, 10_000, "a run after the engine restarted");

    const unscheduled = new Promise((resolve) => engine.events.once("job:unscheduled", resolve));
    expect((await run("STOP", tick)).final).toMatchObject({ status: "succeeded" });
    // Stopped: its schedule ended, and none is left to run it (a run in progress ended with the stop).
    await expect(unscheduled).resolves.toEqual({ serviceId: tick.id });
    const stopped = engine.services().find((s) => s.serviceId === tick.id);
    expect(stopped).toMatchObject({ state: "stopped" });
    expect(stopped?.nextRunAt).toBeUndefined();

    expect((await run("DELETE", tick)).final).toMatchObject({ status: "succeeded" });
    expect(engine.services().some((s) => s.serviceId === tick.id)).toBe(false);
    expect(fs.existsSync(path.join(env.home, "services", tick.id))).toBe(false);
  });

  it("keeps a cron job's schedule when its state cannot be saved, saying why in its log", async () => {
    const tick = job({ name: "unsaved", config: { git: jobSource(), command: "sh tick.sh", trigger: { type: "cron", schedule: "* * * * * *" } } });
    expect((await run("DEPLOY", tick)).final).toMatchObject({ status: "succeeded" });
    const lines = () => env.lines.filter((line) => line.stream.kind === "service" && line.stream.serviceId === tick.id).map((line) => line.text);
    // A directory where the job's state file goes: every write of it fails (as on a full disk).
    const jobFile = path.join(env.home, "services", tick.id, "job.json");
    fs.rmSync(jobFile);
    fs.mkdirSync(jobFile);
    try {
      await eventually(() => lines().some((text) => text.startsWith("[slipway] the schedule's work failed")), 10_000, "the failed write told");
      const ticks = lines().filter((text) => text.startsWith("tick ")).length;
      await eventually(() => lines().filter((text) => text.startsWith("tick ")).length > ticks, 10_000, "the next run");
    } finally {
      fs.rmSync(jobFile, { recursive: true });
    }
    expect((await run("DELETE", tick)).final).toMatchObject({ status: "succeeded" });
  });

  /** Shuts the engine down, lets `scheduledTimes` scheduled times of an every-second job pass, and starts a new engine on the same home. */
  async function engineAwayFor(scheduledTimes: number) {
    await engine.shutdown();
    const stoppedAt = Date.now();
    // Time has to pass for runs to be missed; this waits for the clock, not for something not to happen.
    await eventually(() => Date.now() >= stoppedAt + scheduledTimes * 1000 + 200, 10_000, `${scheduledTimes} scheduled times to pass`);
    engine = env.newEngine();
    await engine.start();
    return new Date(stoppedAt);
  }

  it("runs a cron job once for the runs it missed while no engine ran, and says so in its state and log", async () => {
    const catchUp = job({ name: "catch-up", config: { git: jobSource(), command: "sh tick.sh", trigger: { type: "cron", schedule: "* * * * * *" } } });
    expect((await run("DEPLOY", catchUp)).final).toMatchObject({ status: "succeeded" });
    await eventually(() => engine.services().find((s) => s.serviceId === catchUp.id)?.lastRun, 10_000, "a scheduled run");

    const stoppedAt = await engineAwayFor(2);
    const state = () => engine.services().find((s) => s.serviceId === catchUp.id);
    const missed = state()?.missed;
    expect(missed).toMatchObject({ action: "ran-once", runId: expect.stringMatching(/-missed$/) });
    expect(missed?.count).toBeGreaterThanOrEqual(2);
    expect(Date.parse(missed!.firstAt)).toBeGreaterThanOrEqual(stoppedAt.getTime() - 1_000);
    expect(Date.parse(missed!.lastAt)).toBeLessThanOrEqual(Date.parse(missed!.detectedAt));

    // One run makes up for them, told apart by its id, and the log says why it ran.
    const serviceLines = () => env.lines.filter((line) => line.stream.kind === "service" && line.stream.serviceId === catchUp.id).map((line) => line.text);
    await eventually(() => serviceLines().includes(`tick ${missed!.runId}`), 10_000, "the run that makes up for the missed ones");
    expect(serviceLines().filter((text) => text.endsWith("-missed"))).toHaveLength(1);
    expect(serviceLines()).toContainEqual(
      expect.stringMatching(new RegExp(`^\\[slipway\\] missed ${missed!.count} scheduled runs from .* while no engine ran this job: running it once now`)),
    );
    await eventually(() => serviceLines().some((text) => text.startsWith(`[slipway] run ${missed!.runId} succeeded`)), 10_000, "the make-up run to succeed");

    // The schedule goes on after it.
    await eventually(
      () => serviceLines().some((text) => /^tick \d{14}-cron$/.test(text) && text.slice(5, 19) >= compactTime(missed!.detectedAt)),
      10_000,
      "a scheduled run after the engine came back",
    );
    expect((await run("DELETE", catchUp)).final).toMatchObject({ status: "succeeded" });
  });

  it("skips the missed runs of a job whose policy says so, and records them", async () => {
    const skipper = job({
      name: "skipper",
      config: { git: jobSource(), command: "sh tick.sh", trigger: { type: "cron", schedule: "* * * * * *", missedRuns: "skip" } },
    });
    expect((await run("DEPLOY", skipper)).final).toMatchObject({ status: "succeeded" });
    await eventually(() => engine.services().find((s) => s.serviceId === skipper.id)?.lastRun, 10_000, "a scheduled run");

    await engineAwayFor(2);
    const missed = engine.services().find((s) => s.serviceId === skipper.id)?.missed;
    expect(missed).toMatchObject({ action: "skipped" });
    expect(missed?.runId).toBeUndefined();
    expect(missed?.count).toBeGreaterThanOrEqual(2);
    const serviceLines = () => env.lines.filter((line) => line.stream.kind === "service" && line.stream.serviceId === skipper.id).map((line) => line.text);
    expect(serviceLines()).toContainEqual(expect.stringMatching(/^\[slipway\] missed \d+ scheduled runs from .* skipped \(missedRuns: skip\)$/));

    // The next run is the schedule's own, after the engine came back.
    const next = await eventually(
      () => serviceLines().find((text) => text.startsWith("tick ") && text.slice(5, 19) >= compactTime(missed!.detectedAt)),
      10_000,
      "the next scheduled run",
    );
    expect(next).toMatch(/-cron$/);
    expect(serviceLines().some((text) => text.endsWith("-missed"))).toBe(false);
    expect((await run("DELETE", skipper)).final).toMatchObject({ status: "succeeded" });
  });
});

/** An ISO time as run ids start: 20261129103000. */
const compactTime = (iso: string) => iso.replace(/[-:T]/g, "").slice(0, 14);
