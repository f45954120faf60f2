import fs from "node:fs";
import { randomUUID } from "node:crypto";
import http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineHome, eventually, fixture, service, task } from "../test/engine-harness";
import { appPid } from "../test/support/app-process";
import { type GitServer, startGitServer } from "../test/git-server";
import type { Engine } from "./core";
import { layout, serviceState } from "./runtime/local/layout";
import { isProcessAlive } from "./runtime/local/processes";

/**
 * Stopping a sandboxed release (a deploy's switch drains and stops the old one; a STOP, falling
 * asleep and a restart stop it too) must give the app inside bubblewrap its SIGTERM and its grace
 * period, as it gets without a sandbox: a SIGTERM that reached bubblewrap itself ended the sandbox
 * and SIGKILLed the app at once, cutting its in-flight requests. The SIGKILL after the grace must
 * still end everything: bubblewrap, the app and what the app started.
 */

/**
 * Drains on SIGTERM as apps do: says so, answers the requests still in flight (a long poll here,
 * which waits for the app to stop), and exits 0 a second later.
 */
const GRACEFUL_APP = `
const http = require("node:http");
const version = require("node:fs").readFileSync("version.txt", "utf8").trim();
const inFlight = new Set();
const server = http.createServer((req, res) => {
  if (req.url === "/health") return res.end("ok");
  if (req.url === "/poll") {
    console.log("poll in flight on " + version);
    return void inFlight.add(res);
  }
  res.end(version);
});
server.listen(Number(process.env.PORT), "127.0.0.1");
let stopping = false;
process.on("SIGTERM", () => {
  if (stopping) return; // npm may pass it on too
  stopping = true;
  console.log("draining " + version);
  server.close();
  for (const res of inFlight) res.end("poll answered by " + version + " as it drained");
  setTimeout(() => {
    console.log("drained " + version);
    process.exit(0);
  }, 1000);
});
`;

/** Ignores SIGTERM, and starts a helper in a process group of its own (which a group signal would miss). */
const STUBBORN_APP = `
const http = require("node:http");
const { spawn } = require("node:child_process");
spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)", process.env.HELPER_MARKER], { detached: true, stdio: "ignore" });
http.createServer((req, res) => res.end("ok")).listen(Number(process.env.PORT), "127.0.0.1");
process.on("SIGTERM", () => console.log("ignoring SIGTERM"));
`;

const STOP_GRACE_MS = 4_000;

/** GET through the router, waiting as long as the app takes (the harness's `get` gives up after 5 s). */
function request(port: number, host: string, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path: urlPath, headers: { host }, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    });
    req.setTimeout(60_000, () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
  });
}

/** The live processes of a process group, as this host sees them. */
function groupMembers(pgid: number): number[] {
  return fs.readdirSync("/proc").flatMap((entry) => {
    if (entry.charCodeAt(0) > 57) return [];
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      const [state, , group] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      return Number(group) === pgid && state !== "Z" ? [Number(entry)] : [];
    } catch {
      return [];
    }
  });
}

/** The live processes whose command line holds `marker`. */
function processesWith(marker: string): number[] {
  return fs.readdirSync("/proc").flatMap((entry) => {
    if (entry.charCodeAt(0) > 57 || Number(entry) === process.pid) return [];
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) return [];
      return fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").includes(marker) ? [Number(entry)] : [];
    } catch {
      return [];
    }
  });
}

describe("local engine: stopping a sandboxed app", () => {
  let git: GitServer;
  let env: Awaited<ReturnType<typeof engineHome>>;
  let engine: Engine;
  const helperMarker = `slipway-helper-${randomUUID()}`;
  const graceful = () =>
    service({
      id: "3f1d7a52-9c4e-4b8a-a1d6-5e2f8c0b7d31",
      name: "graceful",
      config: { git: { url: git.url("graceful") }, healthCheckPath: "/health" },
    });
  const stubborn = () =>
    service({
      id: "8a6e2c14-5b3f-4d7e-9f0a-1c2b3d4e5f60",
      name: "stubborn",
      variables: [{ key: "HELPER_MARKER", value: helperMarker, secret: false }],
      config: { git: { url: git.url("stubborn") }, startCommand: "exec node server.js" },
    });
  const runtimeLines = (serviceId: string) =>
    env.lines.filter((line) => line.stream.kind === "service" && line.stream.serviceId === serviceId).map((line) => line.text);
  const deploy = async (spec: ReturnType<typeof graceful>) => {
    const deployment = task("DEPLOY", [spec]);
    await engine.execute(deployment);
    expect(env.final(deployment.deploymentId)?.status).toBe("succeeded");
    return deployment;
  };
  const trackedPid = (serviceId: string) => {
    const state = serviceState.parse(JSON.parse(fs.readFileSync(layout(env.home).stateFile(serviceId), "utf8")));
    if (!state.current) throw new Error("no release runs");
    return state.current.pid;
  };

  beforeAll(async () => {
    git = await startGitServer();
    await git.createRepo("graceful", fixture("node-app"), { "server.js": GRACEFUL_APP, "version.txt": "1\n" });
    await git.createRepo("stubborn", fixture("node-app"), { "server.js": STUBBORN_APP });
    // The host's own sandbox (bubblewrap), as `npm start` runs it: what the fix is about.
    env = await engineHome({ drainTimeoutMs: 300, stopGraceMs: STOP_GRACE_MS });
    engine = env.newEngine();
    await engine.start();
  });

  afterAll(async () => {
    await env?.cleanup();
    await git?.close();
  });

  it("lets the old release finish its in-flight request and drain on a deploy's switch", { timeout: 90_000 }, async () => {
    const first = await deploy(graceful());
    expect(env.lines.some((line) => line.stream.kind === "deployment" && line.stream.deploymentId === first.deploymentId && /^Sandbox: /.test(line.text))).toBe(
      true,
    );
    expect(env.lines.some((line) => line.text === "Sandbox: none (trusted cluster)")).toBe(false);
    const oldPid = trackedPid(graceful().id);

    // A request still open when the drain times out (300 ms): the old release is stopped while it runs.
    const poll = request(env.routerPort, "graceful-test.localhost", "/poll");
    await eventually(() => runtimeLines(graceful().id).includes("poll in flight on 1"), 10_000, "the poll to reach the app");
    await git.pushDirectory("graceful", fixture("node-app"), { "server.js": GRACEFUL_APP, "version.txt": "2\n" });
    await deploy(graceful());

    expect(await poll).toEqual({ status: 200, body: "poll answered by 1 as it drained" });
    const lines = runtimeLines(graceful().id);
    expect(lines).toContain("draining 1");
    expect(lines, lines.join("\n")).toContain("drained 1");
    expect(isProcessAlive(oldPid)).toBe(false);
    expect((await env.get("graceful-test.localhost")).body).toBe("2");
  });

  it("gives an app that ignores SIGTERM its grace period, then kills the sandbox, the app and its helper", { timeout: 90_000 }, async () => {
    await deploy(stubborn());
    const app = appPid(engine.services().find((entry) => entry.serviceId === stubborn().id)?.port);
    const group = groupMembers(trackedPid(stubborn().id));
    const helper = await eventually(() => processesWith(helperMarker)[0], 10_000, "the app's helper to start");
    // The keeper, bubblewrap's two processes and the app share a group; the helper left it.
    expect(group).toContain(app);
    expect(group.length).toBeGreaterThanOrEqual(4);
    expect(group).not.toContain(helper);

    const stop = task("STOP", [stubborn()]);
    const stopping = engine.execute(stop);
    await eventually(() => runtimeLines(stubborn().id).includes("ignoring SIGTERM"), 10_000, "the app to get its SIGTERM");
    // Its grace period: a second after its SIGTERM the app still runs, in its sandbox, under the
    // process the engine tracks (an engine restarted meanwhile would give it its full grace too).
    await sleep(1_000);
    expect(isProcessAlive(app)).toBe(true);
    expect(group.filter((pid) => !isProcessAlive(pid))).toEqual([]);
    await stopping;
    expect(env.final(stop.deploymentId)?.status).toBe("succeeded");
    expect([...group, helper].filter(isProcessAlive)).toEqual([]);
    expect(processesWith(helperMarker)).toEqual([]);
  });
});
