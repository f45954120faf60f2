import fs from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineHome, eventually, fixture, service, task } from "../test/engine-harness";
import { appPid } from "../test/support/app-process";
import { type GitServer, startGitServer } from "../test/git-server";
import type { ResolvedVariable } from "./protocol";
import type { Engine } from "./core";
import { launchSpec, layout } from "./runtime/local/layout";

/**
 * A restart starts the running release again with the variables it was sent, without a rebuild,
 * as Heroku applies a config change (issue 15, item 18); one that fails leaves the running
 * process, and what restarts it after a crash, as they were.
 */
describe("local engine: a restart applies the service's current variables", () => {
  let git: GitServer;
  let env: Awaited<ReturnType<typeof engineHome>>;
  let engine: Engine;
  const id = "0b6f9c1e-2d4a-4e8b-9c3d-5f6a7b8c9d01";
  const api = (variables: ResolvedVariable[]) => service({ id, name: "api", variables, config: { git: { url: git.url("api") }, healthCheckPath: "/health" } });
  const plain = (key: string, value: string) => ({ key, value, secret: false });
  const secret = (key: string, value: string) => ({ key, value, secret: true });
  type Answer = { greeting: string | null; release: string; instance: string };
  const answer = async () => JSON.parse((await env.get("api-test.localhost")).body) as Answer;
  const launchEnv = async (releaseId: string) => launchSpec.parse(JSON.parse(await fs.readFile(layout(env.home).launchFile(id, releaseId), "utf8"))).env;
  const listening = () => env.lines.filter((line) => line.stream.kind === "service" && line.text.includes("listening"));

  beforeAll(async () => {
    git = await startGitServer();
    await git.createRepo("api", fixture("node-app"));
    env = await engineHome({ drainTimeoutMs: 2_000, stopGraceMs: 2_000, backoffBaseMs: 300 });
    engine = env.newEngine();
    await engine.start();
    const deploy = task("DEPLOY", [api([plain("GREETING", "one"), secret("API_TOKEN", "first-secret-1111")])]);
    await engine.execute(deploy);
    expect(env.final(deploy.deploymentId)?.status).toBe("succeeded");
  });

  afterAll(async () => {
    await env?.cleanup();
    await git?.close();
  });

  it("starts the same release with the new values, and masks a new secret from its first line", async () => {
    const before = await answer();
    expect(before.greeting).toBe("one");
    const lines = listening().length;
    const restart = task("RESTART", [api([plain("GREETING", "two"), secret("API_TOKEN", "rotated-secret-2222")])]);
    await engine.execute(restart);
    expect(env.final(restart.deploymentId)?.status).toBe("succeeded");
    expect(env.eventsOf(restart.deploymentId).map((event) => event.step)).not.toContain("build");
    const after = await answer();
    expect(after).toMatchObject({ greeting: "two", release: before.release });
    expect(after.instance).not.toBe(before.instance);

    await eventually(() => listening().length > lines, 10_000, "the restarted process's first line");
    expect(listening().at(-1)!.text).toMatch(/with token \*+$/);
    expect(JSON.stringify(env.lines)).not.toContain("rotated-secret-2222");
    // A crash restart and a shell get them too: the launch file says them now.
    expect(await launchEnv(after.release)).toMatchObject({ GREETING: "two", API_TOKEN: "rotated-secret-2222" });
  });

  it("keeps the running process and its launch file when the restarted one fails its health check", async () => {
    const before = await answer();
    // Node refuses to start when NODE_OPTIONS requires a file that is not there.
    const broken = task("RESTART", [api([plain("GREETING", "three"), plain("NODE_OPTIONS", "--require=/nonexistent/preload.js")])]);
    await engine.execute(broken);
    expect(env.final(broken.deploymentId)?.status).toBe("failed");
    expect(await answer()).toEqual(before);
    const launch = await launchEnv(before.release);
    expect(launch).toMatchObject({ GREETING: "two" });
    expect(launch).not.toHaveProperty("NODE_OPTIONS");

    // Its crash restart starts it as it was.
    process.kill(appPid(engine.services()[0]?.port), "SIGKILL");
    await eventually(async () => engine.services()[0]?.restarts === 1 && (await env.get("api-test.localhost")).status === 200, 15_000, "the crash restart");
    expect((await answer()).greeting).toBe("two");
  });

  it("replaces the instance a crash restart started while the restart's fresh one was being checked", async () => {
    const serving = engine.services()[0]!;
    // The fresh instance (and any started from the same launch file) takes 2.5 s before it runs the app.
    const slowStart = Buffer.from("Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2500);").toString("base64");
    const restart = task("RESTART", [api([plain("GREETING", "four"), plain("NODE_OPTIONS", `--import=data:text/javascript;base64,${slowStart}`)])]);
    const freshLines = () => env.lines.filter((line) => line.text.startsWith("Started a fresh process")).length;
    const before = freshLines();
    const linesBefore = env.lines.length;
    const restarting = engine.execute(restart);
    await eventually(() => freshLines() > before, 10_000, "the fresh process");
    // The serving one crashes meanwhile: supervision starts it again on its port, from the new launch file.
    process.kill(appPid(serving.port), "SIGKILL");
    await restarting;
    expect(env.final(restart.deploymentId)).toMatchObject({ status: "succeeded" });
    expect((await answer()).greeting).toBe("four");
    // The crash restart's instance was the one live when the fresh one went live: it is stopped, not left running untracked.
    const tracked = engine.services()[0]!.port;
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    const listened = env.lines.slice(linesBefore).flatMap((line) => /^version \S+ listening on (\d+)/.exec(line.text)?.[1] ?? []);
    expect(listened.map(Number)).toContain(tracked);
    for (const port of listened.map(Number).filter((port) => port !== tracked)) expect(() => appPid(port)).toThrow(/nothing listens/);
  });
});
