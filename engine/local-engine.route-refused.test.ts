import fs from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineHome, fixture, service, task } from "../test/engine-harness";
import { appPid } from "../test/support/app-process";
import { type GitServer, startGitServer } from "../test/git-server";
import type { Engine } from "./core";
import { routerFiles } from "./router/router-server";
import { layout, serviceState } from "./runtime/local/layout";

/**
 * The router is a process of its own. When it does not take a new routes table (hung, down,
 * refusing), the operation fails and the engine goes on tracking the release that still serves:
 * nothing is left running that no one would stop, and no state an engine restart would act on.
 */
describe("local engine: an operation whose routes the router does not take", () => {
  let git: GitServer;
  let env: Awaited<ReturnType<typeof engineHome>>;
  let engine: Engine;
  const id = "5d1e7c2a-8b3f-4a6e-9d0c-1f2a3b4c5d6e";
  const api = () => service({ id, name: "api", config: { git: { url: git.url("api") }, healthCheckPath: "/health" } });
  type Answer = { version: string; release: string; instance: string };
  const answer = async () => JSON.parse((await env.get("api-test.localhost")).body) as Answer;
  const savedState = async () => serviceState.parse(JSON.parse(await fs.readFile(layout(env.home).stateFile(id), "utf8")));
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  /** Runs `work` with the router process stopped (SIGSTOP): it holds its control socket's requests until they time out. */
  const withRouterHung = async (work: () => Promise<void>) => {
    const { pid } = JSON.parse(await fs.readFile(routerFiles(env.home).pidFile, "utf8")) as { pid: number };
    process.kill(pid, "SIGSTOP");
    try {
      await work();
    } finally {
      process.kill(pid, "SIGCONT");
    }
  };
  const failure = (deploymentId: string) => env.eventsOf(deploymentId).find((event) => event.status === "failed" && event.serviceId);

  beforeAll(async () => {
    git = await startGitServer();
    await git.createRepo("api", fixture("node-app"));
    env = await engineHome({ drainTimeoutMs: 2_000, stopGraceMs: 2_000 });
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

  it("keeps the previous release serving and tracked when a deploy's switch is not taken", async () => {
    const before = await answer();
    await git.pushDirectory("api", fixture("node-app"), { "version.txt": "2\n" });
    const deploy = task("DEPLOY", [api()]);
    await withRouterHung(() => engine.execute(deploy));
    expect(failure(deploy.deploymentId)?.message).toContain("the router did not take the new route");
    expect(await answer()).toEqual(before);
    expect(engine.services()[0]).toMatchObject({ releaseId: before.release, state: "running" });
    expect((await savedState()).current?.releaseId).toBe(before.release);
    // The next deploy goes through.
    const again = task("DEPLOY", [api()]);
    await engine.execute(again);
    expect(env.final(again.deploymentId)?.status).toBe("succeeded");
    expect((await answer()).version).toBe("2");
  });

  it("stops the fresh instance of a restart that is not taken, and keeps the one serving", async () => {
    const before = await answer();
    const serving = engine.services()[0]!;
    const restart = task("RESTART", [api()]);
    await withRouterHung(() => engine.execute(restart));
    expect(failure(restart.deploymentId)?.message).toContain("the router did not take the new route");
    expect(await answer()).toEqual(before);
    expect(engine.services()[0]).toMatchObject({ releaseId: serving.releaseId, port: serving.port, state: "running" });
    expect((await savedState()).current).toMatchObject({ port: serving.port });
    // Only the serving instance runs the release: the fresh one's port is free again.
    const fresh = env.lines.map((line) => /^Started a fresh process .* on port (\d+),/.exec(line.text)?.[1]).filter(Boolean);
    const freshPort = Number(fresh.at(-1));
    expect(freshPort).not.toBe(serving.port);
    expect(() => appPid(freshPort)).toThrow(/nothing listens/);
  });

  it("keeps a service whose removal is not taken, so the retried removal stops its release", async () => {
    const pid = appPid(engine.services()[0]?.port);
    const removal = task("DELETE", [api()]);
    await withRouterHung(() => engine.execute(removal));
    expect(failure(removal.deploymentId)?.message).toContain("the router did not take the new route");
    expect(engine.services()).toHaveLength(1);
    expect(alive(pid)).toBe(true);
    const retried = task("DELETE", [api()]);
    await engine.execute(retried);
    expect(env.final(retried.deploymentId)?.status).toBe("succeeded");
    expect(engine.services()).toHaveLength(0);
    expect(alive(pid)).toBe(false);
  });
});
