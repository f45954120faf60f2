import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineHome, eventually, fixture, service, task } from "../test/engine-harness";
import { type GitServer, startGitServer } from "../test/git-server";
import type { Engine } from "./core";

/**
 * Sleep when idle (issue 16, part 3), through a real engine, its router and a real Node app.
 * A "minute" of `sleepAfterMinutes` lasts 500 ms here (the engine's `sleepMinuteMs`): the same
 * mechanism, in seconds.
 */
describe("local engine: a service sleeps when idle and wakes on a request", () => {
  let git: GitServer;
  let env: Awaited<ReturnType<typeof engineHome>>;
  let engine: Engine;
  const id = "5a1e3c7d-9b2f-4d6a-8e1c-3f5b7d9a1c02";
  const host = "api-test.localhost";
  const api = () => service({ id, name: "api", config: { git: { url: git.url("api") }, healthCheckPath: "/health", sleepAfterMinutes: 3 } });
  const state = () => engine.services().find((entry) => entry.serviceId === id);
  type Answer = { version: string; release: string; instance: string };

  beforeAll(async () => {
    git = await startGitServer();
    await git.createRepo("api", fixture("node-app"));
    env = await engineHome({ drainTimeoutMs: 2_000, stopGraceMs: 2_000, sleepMinuteMs: 500 });
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

  it("falls asleep after the idle time, its process stopped, and wakes on the next request, served with the app's content", async () => {
    const awake = JSON.parse((await env.get(host)).body) as Answer;
    const port = state()!.port;
    await eventually(() => state()?.state === "sleeping", 10_000, "the service to fall asleep");
    // Its process is gone: nothing listens on its port any more.
    await eventually(async () => (await fetch(`http://127.0.0.1:${port}/health`).catch(() => null)) === null, 5_000, "its process to stop");

    const woken = await env.get(host);
    expect(woken.status).toBe(200);
    const answer = JSON.parse(woken.body) as Answer;
    expect(answer).toMatchObject({ version: awake.version, release: awake.release });
    expect(answer.instance).not.toBe(awake.instance);
    expect(state()?.state).toBe("running");
    expect(env.lines.some((line) => line.text.includes("asleep after 3 min without a request"))).toBe(true);
  });

  it("answers every request sent while the release is being stopped", async () => {
    await eventually(() => state()?.state === "running", 10_000, "the service to be awake");
    // Caught the moment the engine decides to sleep: the route is switching, the process not yet stopped.
    await eventually(() => state()?.state === "sleeping", 10_000, "the service to start falling asleep");
    const answers = await Promise.all(
      Array.from({ length: 20 }, async (_, index) => {
        await new Promise((resolve) => setTimeout(resolve, index * 25));
        return env.get(host);
      }),
    );
    expect(answers.map((answer) => answer.status)).toEqual(new Array(20).fill(200));
    for (const answer of answers) expect(JSON.parse(answer.body)).toHaveProperty("release");
    await eventually(() => state()?.state === "running", 10_000, "the service to be awake again");
  });

  it("keeps sleeping across an engine restart, and the next engine wakes it", async () => {
    await eventually(() => state()?.state === "sleeping", 10_000, "the service to fall asleep");
    await engine.shutdown();
    engine = env.newEngine();
    await engine.start();
    expect(state()?.state).toBe("sleeping");
    const woken = await env.get(host);
    expect(woken.status).toBe(200);
    expect(JSON.parse(woken.body)).toHaveProperty("release");
    expect(state()?.state).toBe("running");
  });

  it("stays stopped when stopped while asleep: a request gets 503 and no wake", async () => {
    await eventually(() => state()?.state === "sleeping", 10_000, "the service to fall asleep");
    const stop = task("STOP", [api()]);
    await engine.execute(stop);
    expect(env.final(stop.deploymentId)?.status).toBe("succeeded");
    expect((await env.get(host)).status).toBe(503);
    expect(state()?.state).toBe("stopped");
  });
});
