import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import getPort from "get-port";
import * as pty from "node-pty";
import { io, type Socket } from "socket.io-client";
import { LogTailer } from "../engine/runtime/local/log-tailer";
import { createCaller } from "../server/api/root";
import type { LogLines, ShellOutputMessage, UiClientEvents, UiServerEvents } from "../server/realtime/ui-protocol";
import { fixture, request } from "../test/engine-harness";
import type { GitServer } from "../test/git-server";
import { killProcessesUnder } from "../test/process-cleanup";
import { spawnEngine } from "../test/support/engine-process";
import type { startBenchControlPlane } from "./control-plane";
import { startShellRelayFloor } from "./shell-relay-floor";
import { percentile } from "./stats";

type ControlPlane = Awaited<ReturnType<typeof startBenchControlPlane>>;
type UiSocket = Socket<UiServerEvents, UiClientEvents>;

/**
 * Keystroke round trip: one character typed into a terminal until its echo comes back. `send`
 * types it, `onOutput` is told of output; the line is cleared (Ctrl-U) every 50 keys so the
 * shell's line editor stays cheap. Returns one latency per key, in ms.
 */
export async function roundTrips(keys: number, send: (data: string) => void, onOutput: (listener: (data: string) => void) => void): Promise<number[]> {
  let waiting: ((data: string) => void) | null = null;
  onOutput((data) => waiting?.(data));
  const sendAndWait = (data: string, expect: (text: string) => boolean) =>
    new Promise<void>((resolve, reject) => {
      let seen = "";
      const timer = setTimeout(() => reject(new Error(`no echo of ${JSON.stringify(data)} within 5 s`)), 5_000);
      waiting = (chunk) => {
        seen += chunk;
        if (!expect(seen)) return;
        clearTimeout(timer);
        waiting = null;
        resolve();
      };
      send(data);
    });
  const samples: number[] = [];
  for (let i = 0; i < keys; i++) {
    if (i % 50 === 0) {
      await sendAndWait("\x15", () => true).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const started = performance.now();
    await sendAndWait("x", (text) => text.includes("x"));
    samples.push(performance.now() - started);
  }
  return samples;
}

/**
 * Shells and runtime logs through the whole platform (a socket.io client on `/ui`, the web
 * process, the engine process, a real release), each beside the floor measured in this process.
 */
export async function measureShellAndLogs(plane: ControlPlane, git: GitServer, options: { keys: number; logRate: number; logSeconds: number }) {
  const home = path.join(plane.dir, "engine-shell");
  const routerPort = await getPort();
  const engine = spawnEngine({ url: plane.webUrl, token: plane.org.engineToken, home, routerPort });
  const api = createCaller({ services: plane.services, actor: plane.org.as("DEVELOPER") });
  await git.createRepo("shell-bench", fixture("log-burst"));
  const project = await api.projects.create({ name: "shellbench" });
  const environment = await api.environments.create({ projectId: project.id, name: "dev" });
  const service = await api.services.create({
    environmentId: environment.id,
    name: "web",
    config: { git: { url: git.url("shell-bench"), ref: { branch: "main" } }, healthCheckPath: "/health", startCommand: "node server.js" },
  });
  const socket: UiSocket = io(`${plane.webUrl}/ui`, { auth: { token: await plane.org.apiToken("DEVELOPER") }, transports: ["websocket"] });
  try {
    const { deployment } = await api.deployments.create({ environmentId: environment.id, action: "DEPLOY" });
    for (;;) {
      const current = await api.deployments.get({ deploymentId: deployment.id });
      if (current.status === "DEPLOYED") break;
      if (current.finishedAt) throw new Error(`bench deploy ended ${current.status}: ${current.statusMessage}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await new Promise<void>((resolve, reject) => {
      if (socket.connected) return resolve();
      socket.once("connect", () => resolve());
      socket.once("connect_error", reject);
    });

    // Keystrokes through the platform.
    const sessionId = randomUUID();
    const listeners: ((data: string) => void)[] = [];
    socket.on("shell:output", (message: ShellOutputMessage) => {
      if (message.sessionId === sessionId) for (const listener of listeners) listener(message.data);
    });
    const opened = await socket.timeout(20_000).emitWithAck("shell:open", { sessionId, serviceId: service.id, cols: 200, rows: 50 });
    if (!opened.ok) throw new Error(`shell refused: ${opened.error}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await roundTrips(
      20,
      (data) => socket.emit("shell:input", { sessionId, data }),
      (listener) => listeners.push(listener),
    );
    listeners.length = 0;
    const platform = await roundTrips(
      options.keys,
      (data) => socket.emit("shell:input", { sessionId, data }),
      (listener) => listeners.push(listener),
    );
    socket.emit("shell:close", { sessionId });

    // The floor: the same shell in a local pseudo-terminal, no network at all.
    const local = pty.spawn("/bin/sh", [], {
      name: "xterm-256color",
      cols: 200,
      rows: 50,
      cwd: home,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", TERM: "xterm-256color" },
    });
    const localListeners: ((data: string) => void)[] = [];
    local.onData((data) => localListeners.forEach((listener) => listener(data)));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const direct = await roundTrips(
      options.keys,
      (data) => local.write(data),
      (listener) => localListeners.push(listener),
    );
    local.kill();

    // The floor of the platform's topology: the same keys through two bare Node processes.
    const relayFloor = await startShellRelayFloor();
    let relayed: number[];
    try {
      const { client } = relayFloor;
      await new Promise((resolve) => setTimeout(resolve, 300));
      relayed = await roundTrips(
        options.keys,
        (data) => client.emit("input", data),
        (listener) => client.on("output", listener),
      );
    } finally {
      await relayFloor.stop();
    }

    // Runtime log lines from the release to a following client. Lines are kept whatever their run
    // and counted once the run is known: the first ones may arrive before the answer that names it.
    type Arrivals = { numbers: Set<number>; latencies: number[]; firstAt: number; lastAt: number };
    const followed = new Map<number, Arrivals>();
    const tailedByRun = new Map<number, Arrivals>();
    /** Adds a line of a burst to its run's arrivals. */
    const arrived = (byRun: Map<number, Arrivals>, text: string, now: number) => {
      const match = /^burst (\d+) (\d+) (\d+)$/.exec(text);
      if (!match) return;
      const run = Number(match[1]);
      const arrivals = byRun.get(run) ?? { numbers: new Set(), latencies: [], firstAt: now, lastAt: now };
      byRun.set(run, arrivals);
      arrivals.numbers.add(Number(match[2]));
      arrivals.latencies.push(now - Number(match[3]));
      arrivals.lastAt = now;
    };
    socket.on("log:lines", (batch: LogLines) => {
      const now = Date.now();
      for (const line of batch.lines) arrived(followed, line.text, now);
    });
    // The floor: the release's log file followed from this process as the engine follows it
    // (inotify, the same reader), in the same run: what reading the lines costs with no platform.
    const logFile = await releaseLogFile(home, service.id);
    const tailer = new LogTailer(logFile, (await fs.stat(logFile)).size, (lines) => {
      const now = Date.now();
      for (const line of lines) arrived(tailedByRun, line.text, now);
    });
    tailer.start();
    const joined = await socket.timeout(5_000).emitWithAck("subscribe", { room: `service:${service.id}` });
    if (!joined.ok) throw new Error(`cannot follow the service's logs: ${joined.error}`);
    const total = options.logRate * options.logSeconds;
    const started = Date.now();
    const answer = await request(routerPort, `web-dev-shellbench.localhost`, `/burst?rate=${options.logRate}&seconds=${options.logSeconds}`);
    const run = (JSON.parse(answer.body) as { run: number }).run;
    const ofRun = (byRun: Map<number, Arrivals>) => byRun.get(run) ?? { numbers: new Set<number>(), latencies: [], firstAt: 0, lastAt: 0 };
    const deadline = started + (options.logSeconds + 30) * 1000;
    while ((ofRun(followed).numbers.size < total || ofRun(tailedByRun).latencies.length < total) && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    await tailer.stop();
    const lines = ofRun(followed);
    const received = lines.numbers.size;
    const latencies = lines.latencies;
    const tailed = ofRun(tailedByRun).latencies;
    return {
      keys: options.keys,
      shell: { p50: percentile(platform, 50), p99: percentile(platform, 99) },
      localPty: { p50: percentile(direct, 50), p99: percentile(direct, 99) },
      relayFloor: { p50: percentile(relayed, 50), p99: percentile(relayed, 99) },
      logs: {
        rate: options.logRate,
        total,
        received,
        lost: total - received,
        linesPerSecond: received / Math.max(0.001, (lines.lastAt - lines.firstAt) / 1000),
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        localTail: { p50: percentile(tailed, 50), p99: percentile(tailed, 99) },
      },
    };
  } finally {
    socket.disconnect();
    await engine.stop("SIGTERM");
    await killProcessesUnder(home);
  }
}

/** The release's stdout log in the local runtime's layout (engine/runtime/local/layout.ts): services/<id>/releases/<release>/runtime.log. */
async function releaseLogFile(home: string, serviceId: string): Promise<string> {
  const releases = path.join(home, "services", serviceId, "releases");
  const [release, ...others] = await fs.readdir(releases);
  if (!release || others.length > 0) throw new Error(`expected the one release of the bench's service in ${releases}`);
  return path.join(releases, release, "runtime.log");
}
