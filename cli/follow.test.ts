import { beforeAll, describe, expect, it } from "vitest";
import type { DeploymentEvent, LogLine } from "../engine/protocol/events";
import { recordEngineEvents, recordHeartbeat, recordLogBatch } from "../server/engines/engine-session";
import { startCliHarness, type CliHarness } from "./test-harness";

/**
 * `--watch` and `--follow` while an engine works: the test plays the engine, recording events
 * and log lines through the same domain functions the engine gateway calls.
 */
let h: CliHarness;
const ids: Record<string, string> = {};

beforeAll(async () => {
  h = await startCliHarness();
  await h.cli(["login", "--url", h.url, "--token", h.ownerToken]);
  await h.cli(["project", "create", "shop"]);
  for (const env of ["dev", "qa", "ops"]) {
    await h.cli(["env", "create", `shop/${env}`]);
    const created = await h.cli(["service", "create", `shop/${env}/web`, "--git", "https://example.test/shop.git", "--json"]);
    ids[env] = (JSON.parse(created.stdout) as { id: string }).id;
  }
});

let seq = 0;
function event(serviceId: string | null, step: DeploymentEvent["step"], status: DeploymentEvent["status"], extra: Partial<DeploymentEvent> = {}): DeploymentEvent {
  return { seq: ++seq, serviceId, step, status, at: new Date().toISOString(), ...extra };
}

const engineEvents = (deploymentId: string, events: DeploymentEvent[]) => recordEngineEvents(h.services, h.org.clusterId, deploymentId, events);

function lines(from: number, to: number, prefix: string): LogLine[] {
  return Array.from({ length: to - from + 1 }, (_, i) => ({ seq: from + i, at: new Date().toISOString(), fd: "stdout" as const, text: `${prefix} ${from + i}` }));
}

describe("deploy --watch", () => {
  it("prints each step as the engine reports it and exits 0 when DEPLOYED", async () => {
    const web = ids.dev!;
    const running = h.start(["deploy", "shop/dev", "--watch"]);
    const [, id] = await running.waitFor(/^Deployment ([0-9a-f-]{36}) DEPLOY shop\/dev$/m);

    await engineEvents(id!, [event(null, "deployment", "started"), event(web, "clone", "started")]);
    const cloned = event(web, "clone", "succeeded", { durationMs: 1200, commit: "abc1234def5678" });
    await engineEvents(id!, [cloned]);
    await running.waitFor(/✓ web clone 1\.2s \(commit abc1234\)/);
    // An engine re-sends what it is unsure was received: stored, and so printed, once.
    await engineEvents(id!, [cloned, event(web, "build", "started")]);
    await running.waitFor(/▸ web build/);
    await engineEvents(id!, [
      event(web, "build", "succeeded", { durationMs: 65_000 }),
      event(web, "start", "started"),
      event(web, "start", "succeeded", { durationMs: 300 }),
      event(web, "health_check", "succeeded", { durationMs: 2500 }),
      event(null, "deployment", "succeeded"),
    ]);

    const result = await running.done;
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(result.stdout.split("\n").slice(1)).toEqual([
      "▸ deployment started",
      "▸ web clone",
      "✓ web clone 1.2s (commit abc1234)",
      "▸ web build",
      "✓ web build 1m 05s",
      "▸ web start",
      "✓ web start 300ms",
      "✓ web health_check 2.5s",
      expect.stringMatching(/^DEPLOYED in \d+ms$/),
      "",
    ]);
  });

  it("prints the failing step with its reason and exits 1 on BUILD_ERROR", async () => {
    const web = ids.qa!;
    const running = h.start(["deploy", "shop/qa/web", "--watch"]);
    const [, id] = await running.waitFor(/^Deployment ([0-9a-f-]{36}) DEPLOY shop\/qa\/web$/m);
    await engineEvents(id!, [
      event(null, "deployment", "started"),
      event(web, "clone", "succeeded", { durationMs: 10, commit: "0123456789" }),
      event(web, "build", "started"),
      event(web, "build", "failed", { message: "npm ERR! missing script: build\n  at run (npm.js:1)" }),
      event(null, "deployment", "failed", { message: "web: build failed" }),
    ]);
    const result = await running.done;
    expect(result.code).toBe(1);
    expect(result.stdout).toContain("✗ web build: npm ERR! missing script: build\n");
    expect(result.stdout).toMatch(/^BUILD_ERROR: web: build failed \(after \d+ms\)\n$/m);
    expect((await h.cli(["deployments", "shop/qa"])).stdout).toMatch(new RegExp(`^${id}\\s+DEPLOY\\s+BUILD_ERROR\\s.*web: build failed$`, "m"));
  });

  it("ends with CANCELED and exit 1 when the deployment is canceled meanwhile", async () => {
    const running = h.start(["restart", "shop/ops", "--watch"]);
    const [, id] = await running.waitFor(/^Deployment ([0-9a-f-]{36}) RESTART shop\/ops$/m);
    expect((await h.cli(["cancel", id!])).code).toBe(0);
    const result = await running.done;
    expect(result.code).toBe(1);
    expect(result.stdout).toContain("· cancel requested by token:test-OWNER\n");
    expect(result.stdout).toMatch(/\nCANCELED: canceled before it started\n$/);
  });

  it("stops watching when interrupted, saying the deployment goes on", async () => {
    const controller = new AbortController();
    const running = h.start(["stop", "shop/ops", "--watch"], { signal: controller.signal });
    const [, id] = await running.waitFor(/^Deployment ([0-9a-f-]{36}) STOP shop\/ops$/m);
    controller.abort();
    const result = await running.done;
    expect(result.code).toBe(130);
    expect(result.stderr).toBe(`error: stopped watching; deployment ${id} goes on (slipway cancel ${id} stops it)\n`);
    await h.cli(["cancel", id!]);
  });
});

describe("status", () => {
  it("shows each service's runtime state, restarts and commit, and the last deployment", async () => {
    await recordHeartbeat(h.services, h.org.clusterId, [], [{ serviceId: ids.dev!, releaseId: "r1", state: "running", restarts: 2, commit: "abc1234def5678" }]);
    const status = await h.cli(["status", "shop/dev"]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^environment\s+shop\/dev \(DEVELOPMENT\)$/m);
    expect(status.stdout).toMatch(/^last deployment\s+DEPLOY DEPLOYED \d+s ago, took \d+ms [0-9a-f-]{36}$/m);
    expect(status.stdout).toMatch(/^SERVICE\s+STATE\s+RESTARTS\s+COMMIT\s+REPORTED$/m);
    expect(status.stdout).toMatch(/^web\s+running\s+2\s+abc1234\s+\d+s ago$/m);
    const json = JSON.parse((await h.cli(["status", "shop/dev", "--json"])).stdout) as { services: unknown[]; lastDeployment: unknown };
    expect(json.services).toEqual([expect.objectContaining({ name: "web", runtime: expect.objectContaining({ state: "running", restarts: 2 }) })]);
    expect(json.lastDeployment).toMatchObject({ status: "DEPLOYED", action: "DEPLOY" });
  });
});

describe("logs", () => {
  it("--follow prints every runtime line exactly once, in order, until interrupted", async () => {
    const stream = { kind: "service" as const, serviceId: ids.dev!, releaseId: "r1" };
    await recordLogBatch(h.services, h.org.clusterId, stream, lines(1, 3, "boot"));
    const controller = new AbortController();
    const running = h.start(["logs", "shop/dev/web", "--follow"], { signal: controller.signal });
    await running.waitFor(/boot 3\n/);
    // A re-sent batch overlapping what was printed, then new lines across several polls.
    await recordLogBatch(h.services, h.org.clusterId, stream, [...lines(2, 3, "boot"), ...lines(4, 5, "serving")]);
    await running.waitFor(/serving 5\n/);
    await recordLogBatch(h.services, h.org.clusterId, stream, lines(6, 6, "request"));
    await running.waitFor(/request 6\n/);
    controller.abort();
    const result = await running.done;
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(result.stdout).toBe(["boot 1", "boot 2", "boot 3", "serving 4", "serving 5", "request 6", ""].join("\n"));

    const grep = await h.cli(["logs", "shop/dev/web", "--grep", "SERVING", "--json"]);
    expect(grep.stdout.trim().split("\n").map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual([4, 5]);
    expect((await h.cli(["logs", "shop/dev/web", "--since", "1h", "-t"])).stdout).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z boot 1$/m);
    expect((await h.cli(["logs", "shop/dev/web", "--since", "soon"])).code).toBe(2);
  });

  it("starts runtime logs with their last 100 lines, or as many as --tail says", async () => {
    const stream = { kind: "service" as const, serviceId: ids.qa!, releaseId: "r1" };
    await recordLogBatch(h.services, h.org.clusterId, stream, lines(1, 150, "line"));
    const printed = async (...args: string[]) => (await h.cli(["logs", "shop/qa/web", ...args])).stdout.trim().split("\n");
    const defaults = await printed();
    expect(defaults).toHaveLength(100);
    expect(defaults[0]).toBe("line 51");
    expect(defaults.at(-1)).toBe("line 150");
    expect(await printed("--tail", "2")).toEqual(["line 149", "line 150"]);
    expect(await printed("--tail", "all")).toHaveLength(150);
    expect((await h.cli(["logs", "shop/qa/web", "--tail", "0"])).code).toBe(2);
  });

  it("shows a deployment's build logs with --deployment or --build, and a follow ends with the deployment", async () => {
    const running = h.start(["deploy", "shop/ops/web"]);
    const [, id] = await running.waitFor(/^Deployment ([0-9a-f-]{36}) DEPLOY/m);
    const stream = { kind: "deployment" as const, deploymentId: id!, serviceId: ids.ops! };
    await recordLogBatch(h.services, h.org.clusterId, stream, lines(1, 2, "build step"));

    const follow = h.start(["logs", "shop/ops/web", "--build", "--follow"]);
    await follow.waitFor(/build step 2\n/);
    await recordLogBatch(h.services, h.org.clusterId, stream, lines(3, 3, "build done"));
    await engineEvents(id!, [event(null, "deployment", "started"), event(null, "deployment", "succeeded")]);
    const followed = await follow.done;
    expect(followed).toMatchObject({ code: 0, stdout: "build step 1\nbuild step 2\nbuild done 3\n" });

    expect((await h.cli(["logs", "shop/ops/web", "--deployment", id!])).stdout).toBe("build step 1\nbuild step 2\nbuild done 3\n");
    const unknown = await h.cli(["logs", "shop/ops/web", "--deployment", "00000000-0000-4000-8000-000000000000"]);
    expect(unknown).toMatchObject({ code: 3, stderr: "error: Deployment not found\n" });
    expect((await h.cli(["logs", "shop/dev/web", "--build", "--deployment", id!])).code).toBe(2);
  });
});
