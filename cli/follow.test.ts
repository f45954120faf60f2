import http from "node:http";
import type { AddressInfo } from "node:net";
import { beforeAll, describe, expect, it } from "vitest";
import type { LogLine } from "../engine/protocol/events";
import { recordHeartbeat, recordLogBatch } from "../server/engines/engine-session";
import { startCliHarness, type CliHarness, type EnginePlayer } from "./test-harness";

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

/** The test plays the engine (cli/test-harness.ts). */
const event: EnginePlayer["event"] = (...args) => h.engine.event(...args);
const engineEvents: EnginePlayer["record"] = (...args) => h.engine.record(...args);

function lines(from: number, to: number, prefix: string): LogLine[] {
  return Array.from({ length: to - from + 1 }, (_, i) => ({
    seq: from + i,
    at: new Date().toISOString(),
    fd: "stdout" as const,
    text: `${prefix} ${from + i}`,
  }));
}

describe("deploy --watch", () => {
  it("prints each step as the engine reports it and exits 0 when DEPLOYED", async () => {
    const web = ids.dev!;
    const running = h.start(["deploy", "shop/dev", "--watch"]);
    const [, id] = await running.waitFor(/^Deployment ([0-9a-f-]{36}) DEPLOY shop\/dev$/m);

    await engineEvents(id!, [event(null, "deployment", "started"), event(web, "clone", "started")]);
    const cloned = event(web, "clone", "succeeded", { durationMs: 1200, commit: "abc1234def5678", message: "branch master, the repository's default" });
    await engineEvents(id!, [cloned]);
    await running.waitFor(/✓ web clone 1\.2s: branch master, the repository's default \(commit abc1234\)/);
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
      "✓ web clone 1.2s: branch master, the repository's default (commit abc1234)",
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
    expect((await h.cli(["deployments", "shop/qa"])).stdout).toMatch(new RegExp(`^${id}\\s+DEPLOY\\s+BUILD_ERROR\\s.*web: build failed\\s+0123456$`, "m"));
  });

  it("ends with CANCELED and exit 1 when the deployment is canceled meanwhile", async () => {
    const running = h.start(["restart", "shop/ops", "--watch"]);
    const [, id] = await running.waitFor(/^Deployment ([0-9a-f-]{36}) RESTART shop\/ops$/m);
    expect((await h.cli(["cancel", id!])).code).toBe(0);
    // Leased to the engine at once (nothing else ran): the engine stops it and says so.
    await running.waitFor(/· cancel requested by token:test-OWNER\n/);
    await engineEvents(id!, [event(null, "deployment", "canceled", { message: "deployment canceled before clone of web" })]);
    const result = await running.done;
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/\nCANCELED: deployment canceled before clone of web\n$/);
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
    await engineEvents(id!, [event(null, "deployment", "canceled", { message: "deployment canceled before it finished" })]);
  });
});

describe("status", () => {
  it("shows each service's status, runtime state, restarts and commit, and the last deployment", async () => {
    await recordHeartbeat(h.services, h.org.clusterId, [], [{ serviceId: ids.dev!, releaseId: "r1", state: "running", restarts: 2, commit: "abc1234def5678" }]);
    const status = await h.cli(["status", "shop/dev"]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^environment\s+shop\/dev \(DEVELOPMENT\)$/m);
    expect(status.stdout).toMatch(/^last deployment\s+DEPLOY DEPLOYED \d+s ago, took \d+ms [0-9a-f-]{36}$/m);
    expect(status.stdout).toMatch(/^status\s+DEPLOYED$/m);
    expect(status.stdout).toMatch(/^SERVICE\s+STATUS\s+STATE\s+RESTARTS\s+COMMIT\s+REPORTED$/m);
    expect(status.stdout).toMatch(/^web\s+running\s+running\s+2\s+abc1234\s+\d+s ago$/m);
    const json = JSON.parse((await h.cli(["status", "shop/dev", "--json"])).stdout) as { services: unknown[]; lastDeployment: unknown };
    expect(json.services).toEqual([
      expect.objectContaining({ name: "web", status: "running", runtime: expect.objectContaining({ state: "running", restarts: 2 }) }),
    ]);
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
    expect(
      grep.stdout
        .trim()
        .split("\n")
        .map((l) => (JSON.parse(l) as { seq: number }).seq),
    ).toEqual([4, 5]);
    expect((await h.cli(["logs", "shop/dev/web", "--since", "1h", "-t"])).stdout).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z boot 1$/m);
    expect((await h.cli(["logs", "shop/dev/web", "--since", "soon"])).code).toBe(2);
  });

  it("--level keeps JSON lines at that level or more severe, in a listing and in a follow", async () => {
    const created = await h.cli(["service", "create", "shop/dev/leveled", "--git", "https://example.test/shop.git", "--json"]);
    const stream = { kind: "service" as const, serviceId: (JSON.parse(created.stdout) as { id: string }).id, releaseId: "r1" };
    const at = () => new Date().toISOString();
    await recordLogBatch(h.services, h.org.clusterId, stream, [
      { seq: 1, at: at(), fd: "stdout", text: '{"level":30,"msg":"listening"}' },
      { seq: 2, at: at(), fd: "stdout", text: '{"level":40,"msg":"slow query"}' },
      { seq: 3, at: at(), fd: "stderr", text: "plain text" },
    ]);
    expect((await h.cli(["logs", "shop/dev/leveled", "--level", "warn"])).stdout).toBe('{"level":40,"msg":"slow query"}\n');
    const json = await h.cli(["logs", "shop/dev/leveled", "--json"]);
    expect(
      json.stdout
        .trim()
        .split("\n")
        .map((l) => (JSON.parse(l) as { level: string | null }).level),
    ).toEqual(["info", "warn", null]);
    const unknown = await h.cli(["logs", "shop/dev/leveled", "--level", "loud"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/Allowed choices are debug, info, warn, error, fatal/);

    const controller = new AbortController();
    const running = h.start(["logs", "shop/dev/leveled", "--follow", "--level", "error"], { signal: controller.signal });
    await recordLogBatch(h.services, h.org.clusterId, stream, [
      { seq: 4, at: at(), fd: "stdout", text: '{"level":"info","message":"request"}' },
      { seq: 5, at: at(), fd: "stdout", text: '{"level":"error","message":"dial tcp: refused"}' },
    ]);
    await running.waitFor(/refused/);
    controller.abort();
    expect((await running.done).stdout).toBe('{"level":"error","message":"dial tcp: refused"}\n');
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

    // The newest deployment is another service's: --build says so, and shows web's latest.
    await h.cli(["service", "create", "shop/ops/api", "--git", "https://example.test/api.git", "--no-check"]);
    const other = await h.cli(["deploy", "shop/ops/api"]);
    const [, otherId] = /^Deployment ([0-9a-f-]{36})/m.exec(other.stdout)!;
    const build = await h.cli(["logs", "shop/ops/web", "--build"]);
    expect(build).toMatchObject({
      code: 0,
      stdout: "build step 1\nbuild step 2\nbuild done 3\n",
      stderr: `The latest deployment (${otherId}) did not include shop/ops/web; showing ${id}, the latest that did\n`,
    });
    await h.cli(["cancel", otherId!]);
  });
});

/**
 * Issue 12: the control plane restarts (its supervisor brings a crashed web process back) while
 * a follow runs. The test stops the real web server, stores what the engine reports meanwhile,
 * and starts the server again on the same port.
 */
describe("through a control-plane outage", () => {
  const lost = /^lost the control plane \(cannot reach http:\/\/127\.0\.0\.1:\d+: connection (refused|reset|closed)\); retrying for up to 5m 00s$/;
  const reconnected = /^reconnected to the control plane after [\d.]+m?s$/;
  let web = "";
  const runtime = () => ({ kind: "service" as const, serviceId: web, releaseId: "r1" });

  beforeAll(async () => {
    await h.cli(["env", "create", "shop/outage"]);
    const created = await h.cli(["service", "create", "shop/outage/web", "--git", "https://example.test/shop.git", "--json"]);
    web = (JSON.parse(created.stdout) as { id: string }).id;
  });

  it("logs --follow says it lost the control plane, resumes after the last line printed, and says it is back", async () => {
    await recordLogBatch(h.services, h.org.clusterId, runtime(), lines(1, 2, "before"));
    const controller = new AbortController();
    const running = h.start(["logs", "shop/outage/web", "--follow"], { signal: controller.signal });
    await running.waitFor(/before 2\n/);

    await h.stopServer();
    await recordLogBatch(h.services, h.org.clusterId, runtime(), lines(3, 4, "during"));
    await running.waitForStderr(/lost the control plane/);
    await h.startServer();
    await running.waitFor(/during 4\n/);
    await recordLogBatch(h.services, h.org.clusterId, runtime(), lines(5, 5, "after"));
    await running.waitFor(/after 5\n/);
    controller.abort();

    const result = await running.done;
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(["before 1", "before 2", "during 3", "during 4", "after 5", ""].join("\n"));
    const notes = result.stderr.trimEnd().split("\n");
    expect(notes).toHaveLength(2);
    expect(notes[0]).toMatch(lost);
    expect(notes[1]).toMatch(reconnected);
  });

  it("deploy --watch prints every step once across the outage and ends with the deployment's outcome", async () => {
    const running = h.start(["deploy", "shop/outage", "--watch"]);
    const [, id] = await running.waitFor(/^Deployment ([0-9a-f-]{36}) DEPLOY shop\/outage$/m);
    await engineEvents(id!, [event(null, "deployment", "started"), event(web, "clone", "started")]);
    await running.waitFor(/▸ web clone\n/);

    await h.stopServer();
    // The deployment goes on and ends while the CLI cannot see it.
    await engineEvents(id!, [
      event(web, "clone", "succeeded", { durationMs: 800, commit: "abc1234def5678" }),
      event(web, "build", "succeeded", { durationMs: 3000 }),
      event(web, "start", "succeeded", { durationMs: 200 }),
      event(null, "deployment", "succeeded"),
    ]);
    await running.waitForStderr(/lost the control plane/);
    await h.startServer();

    const result = await running.done;
    expect(result.code).toBe(0);
    expect(result.stdout.split("\n").slice(1)).toEqual([
      "▸ deployment started",
      "▸ web clone",
      "✓ web clone 800ms (commit abc1234)",
      "✓ web build 3.0s",
      "✓ web start 200ms",
      expect.stringMatching(/^DEPLOYED in [\d.]+m?s$/),
      "",
    ]);
    const notes = result.stderr.trimEnd().split("\n");
    expect(notes).toHaveLength(2);
    expect(notes[0]).toMatch(lost);
    expect(notes[1]).toMatch(reconnected);
  });

  it("takes a proxy's 502 for an outage too", async () => {
    const proxy = await startProxy(h.url);
    const controller = new AbortController();
    const running = h.start(["logs", "shop/outage/web", "--follow", "--tail", "1"], { signal: controller.signal, env: { SLIPWAY_URL: proxy.url } });
    await running.waitFor(/after 5\n/);
    await h.stopServer();
    await recordLogBatch(h.services, h.org.clusterId, runtime(), lines(6, 6, "behind a proxy"));
    await running.waitForStderr(/lost the control plane/);
    await h.startServer();
    await running.waitFor(/behind a proxy 6\n/);
    controller.abort();
    const result = await running.done;
    await proxy.close();
    expect(result).toMatchObject({ code: 0, stdout: "after 5\nbehind a proxy 6\n" });
    const notes = result.stderr.trimEnd().split("\n");
    expect(notes).toEqual([
      `lost the control plane (cannot reach ${proxy.url}: HTTP 502 Bad Gateway); retrying for up to 5m 00s`,
      expect.stringMatching(reconnected),
    ]);
  });

  it("stops at once on Ctrl-C while it waits for the control plane", async () => {
    const controller = new AbortController();
    const running = h.start(["restart", "shop/outage", "--watch"], { signal: controller.signal });
    const [, id] = await running.waitFor(/^Deployment ([0-9a-f-]{36}) RESTART shop\/outage$/m);
    await h.stopServer();
    try {
      await running.waitForStderr(/lost the control plane/);
      // The bound is 5 minutes: only the interruption can end the command within the test's time.
      controller.abort();
      const result = await running.done;
      expect(result.code).toBe(130);
      expect(result.stderr.trimEnd().split("\n").at(-1)).toBe(`error: stopped watching; deployment ${id} goes on (slipway cancel ${id} stops it)`);
    } finally {
      await h.startServer();
    }
    await h.cli(["cancel", id!]);
  });

  it("gives up with exit 1 when the control plane stays away longer than --reconnect-timeout", async () => {
    await recordLogBatch(h.services, h.org.clusterId, runtime(), lines(7, 7, "last"));
    const running = h.start(["logs", "shop/outage/web", "--follow", "--tail", "1", "--reconnect-timeout", "1s"]);
    await running.waitFor(/last 7\n/);
    await h.stopServer();
    try {
      const result = await running.done;
      expect(result.code).toBe(1);
      expect(result.stdout).toBe("last 7\n");
      const [note, error, ...rest] = result.stderr.trimEnd().split("\n");
      expect(note).toMatch(/^lost the control plane \(cannot reach .*\); retrying for up to 1\.0s$/);
      expect(error).toMatch(/^error: gave up after [\d.]+s without the control plane: cannot reach http:\/\/127\.0\.0\.1:\d+: connection refused$/);
      expect(rest).toEqual([]);
    } finally {
      await h.startServer();
    }
  });

  it("exits at once on an error that waiting cannot fix: a token revoked while following", async () => {
    const created = await h.cli(["token", "create", "follower", "--role", "VIEWER", "--json"]);
    const { token, apiToken } = JSON.parse(created.stdout) as { token: string; apiToken: { id: string } };
    const running = h.start(["logs", "shop/outage/web", "--follow", "--tail", "1"], { env: { SLIPWAY_TOKEN: token } });
    await running.waitFor(/last 7\n/);
    await h.cli(["token", "revoke", apiToken.id]);
    const result = await running.done;
    expect(result).toMatchObject({ code: 4, stdout: "last 7\n", stderr: "error: Unknown or revoked API token\n" });
  });

  it("refuses a --reconnect-timeout that is not a duration before it deploys anything", async () => {
    const before = (await h.cli(["deployments", "shop/outage", "--json"])).stdout;
    const result = await h.cli(["deploy", "shop/outage", "--watch", "--reconnect-timeout", "soon"]);
    expect(result).toMatchObject({ code: 2, stdout: "", stderr: 'error: --reconnect-timeout "soon": expected a duration like 30s, 5m or 1h\n' });
    expect((await h.cli(["deployments", "shop/outage", "--json"])).stdout).toBe(before);
    const fromEnv = await h.cli(["logs", "shop/outage/web"], { env: { SLIPWAY_RECONNECT_TIMEOUT: "5 minutes" } });
    expect(fromEnv).toMatchObject({ code: 2, stderr: 'error: SLIPWAY_RECONNECT_TIMEOUT "5 minutes": expected a duration like 30s, 5m or 1h\n' });
  });
});

/** A reverse proxy in front of the control plane, as production has: 502 while nothing answers behind it. */
async function startProxy(target: string): Promise<{ url: string; close(): Promise<void> }> {
  const proxy = http.createServer((req, res) => {
    const upstream = http.request(new URL(req.url ?? "/", target), { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on("error", () => {
      if (res.headersSent) res.destroy();
      else res.writeHead(502, "Bad Gateway", { "content-type": "text/html" }).end("<html><body><h1>502 Bad Gateway</h1></body></html>\n");
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  const { port } = proxy.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => {
      proxy.closeAllConnections();
      return new Promise<void>((resolve, reject) => proxy.close((error) => (error ? reject(error) : resolve())));
    },
  };
}
