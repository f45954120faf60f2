import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineHome, eventually, fixture, service, task } from "../test/engine-harness";
import { skipWithout } from "../test/support/requirements";
import { type GitServer, startGitServer } from "../test/git-server";
import { releaseCgroupsCleanup } from "../test/support/cgroups";
import type { Engine } from "./core";
import type { ShellExit, ShellOutput } from "./protocol/shell";
import { detectCgroups } from "./runtime/local/cgroups";
import type { ExecSession } from "./runtime/runtime";
import { createShellSessions } from "./shell-sessions";

/** Collects a session's output as text. */
function collect(session: ExecSession) {
  let text = "";
  session.on("data", (chunk: Buffer | string) => (text += chunk.toString()));
  return { text: () => text };
}

describe("local engine: shells, metrics and limits of a live release", () => {
  let git: GitServer;
  let env: Awaited<ReturnType<typeof engineHome>>;
  let engine: Engine;
  let appDir = "";
  const web = service({
    name: "web",
    config: { git: { url: "http://127.0.0.1/placeholder.git" }, healthCheckPath: "/health", startCommand: "node server.js" },
    variables: [{ key: "GREETING", value: "hello from a variable", secret: false }],
  });
  const hog = service({
    name: "hog",
    config: {
      git: { url: "http://127.0.0.1/placeholder.git" },
      healthCheckPath: "/health",
      startCommand: "node server.js",
      resources: { memoryMb: 128, cpus: 0.5 },
    },
  });

  beforeAll(async () => {
    git = await startGitServer();
    await git.createRepo("hog", fixture("memory-hog"));
    web.config.git.url = git.url("hog");
    hog.config.git.url = git.url("hog");
    env = await engineHome({ drainTimeoutMs: 2_000, stopGraceMs: 2_000, backoffBaseMs: 300 });
    engine = env.newEngine();
    await engine.start();
    const deploy = task("DEPLOY", [web]);
    await engine.execute(deploy);
    expect(env.final(deploy.deploymentId)?.status).toBe("succeeded");
    appDir = env.lines.find((line) => line.text.startsWith("Started "))?.text ?? "";
  }, 60_000);

  afterAll(async () => {
    const removeCgroups = env ? releaseCgroupsCleanup(env.home) : () => undefined;
    await env?.cleanup();
    removeCgroups();
    await git?.close();
  });

  it("opens a shell in a pseudo-terminal, in the release's app directory, with the service's variables", async () => {
    const session = await engine.exec!(web.id, [], { tty: true, cols: 100, rows: 30 });
    const out = collect(session);
    session.write('pwd; echo "greeting=$GREETING term=$TERM"; stty size\n');
    await eventually(() => out.text().includes("30 100"), 5_000, "stty size 30 100");
    expect(out.text()).toContain("greeting=hello from a variable term=xterm-256color");
    expect(out.text()).toMatch(new RegExp(`${env.home}/services/${web.id}/releases/[^/\\s]+/src`));
    expect(appDir).toContain("node server.js");

    await session.resize({ cols: 132, rows: 43 });
    session.write("stty size\n");
    await eventually(() => out.text().includes("43 132"), 5_000, "stty size after the resize");
    session.write("exit 7\n");
    expect(await session.exited).toBe(7);
  });

  it("runs a command without a terminal and returns its exit code", async () => {
    const session = await engine.exec!(web.id, ["sh", "-c", 'echo "out $GREETING"; echo err >&2; exit 3'], { tty: false });
    const out = collect(session);
    session.end();
    expect(await session.exited).toBe(3);
    await eventually(() => out.text().includes("err"), 2_000, "stderr");
    expect(out.text()).toContain("out hello from a variable");
  });

  /**
   * The engine's shell sessions on this release's runtime, with every message they send; the
   * client acknowledges the messages that ask for it at once, or as `acknowledge` says.
   */
  const shellSessions = (acknowledge: (payload: ShellOutput) => Promise<void> = async () => undefined) => {
    const sent: (ShellOutput | ShellExit)[] = [];
    const shells = createShellSessions({
      exec: engine.exec!.bind(engine),
      send: (_name, payload) => void sent.push(payload),
      sendAcknowledged: (payload) => {
        sent.push(payload);
        return acknowledge(payload);
      },
      logger: pino({ level: "silent" }),
    });
    return { shells, sent };
  };
  const isExit = (message: ShellOutput | ShellExit): message is ShellExit => "code" in message;
  const isOutput = (message: ShellOutput | ShellExit): message is ShellOutput => "data" in message;

  it("ships numbered output and the exit, and ends idle sessions", async () => {
    const { shells, sent } = shellSessions();
    const sessionId = "0b5c1d7e-3f6a-4b8c-9d0e-1f2a3b4c5d6e";
    await shells.open({ sessionId, serviceId: web.id, tty: true, cols: 80, rows: 24, idleTimeoutSeconds: 900 });
    // Out of order on purpose: the resize (seq 1) arrives before the input that precedes it (seq 0).
    shells.input({ sessionId, seq: 1, data: "stty size; exit 4\n" });
    shells.resize({ sessionId, seq: 0, cols: 90, rows: 33 });
    const exit = await eventually(() => sent.find((message): message is ShellExit => "code" in message), 5_000, "the exit");
    expect(exit).toMatchObject({ sessionId, code: 4 });
    const output = sent.filter((message): message is ShellOutput => "data" in message);
    expect(output.map((message) => message.seq)).toEqual(output.map((_, index) => index));
    expect(exit.seq).toBe(output.length);
    expect(output.map((message) => message.data).join("")).toContain("33 90");

    const idle = "1c6d2e8f-4a7b-4c9d-8e1f-2a3b4c5d6e7f";
    await shells.open({ sessionId: idle, serviceId: web.id, tty: true, cols: 80, rows: 24, idleTimeoutSeconds: 1 });
    const ended = await eventually(
      () => sent.find((message): message is ShellExit => message.sessionId === idle && "code" in message),
      5_000,
      "the idle timeout",
    );
    expect(ended.reason).toBe("no input for 1 seconds");
    expect(shells.size).toBe(0);
  });

  it("holds back a command's output while its client does not read, then ships all of it in order", async () => {
    // A client on a slow link: it acknowledges nothing until it reads again.
    let reading = false;
    const unread: (() => void)[] = [];
    let acknowledgedSeq = -1;
    const { shells, sent } = shellSessions(async (payload) => {
      if (!reading) await new Promise<void>((resolve) => unread.push(resolve));
      acknowledgedSeq = Math.max(acknowledgedSeq, payload.seq);
    });
    // What the engine holds for the session in its socket's buffers: the output sent past what the client acknowledged.
    const inFlight = () =>
      sent
        .filter((message) => isOutput(message) && message.seq > acknowledgedSeq)
        .reduce((sum, message) => sum + (isOutput(message) ? message.data.length : 0), 0);
    const sessionId = "2d7e3f9a-5b8c-4dae-9f2a-3b4c5d6e7f80";
    const lines = 3_000_000; // some 20 MB of output, written as fast as the pipe takes it
    await shells.open({ sessionId, serviceId: web.id, argv: ["seq", String(lines)], tty: false, cols: 80, rows: 24, idleTimeoutSeconds: 900 });

    await eventually(() => inFlight() > 200 * 1024, 5_000, "output to go out");
    await sleep(500);
    const held = inFlight();
    expect(held).toBeLessThan(1024 * 1024);
    await sleep(500);
    // Nothing more went out: the command waits on its full pipe, it did not finish.
    expect(inFlight()).toBe(held);
    expect(sent.some(isExit)).toBe(false);

    reading = true;
    for (const acknowledge of unread.splice(0)) acknowledge();
    const exit = await eventually(() => sent.find(isExit), 30_000, "the exit");
    expect(exit.code).toBe(0);
    const output = sent.filter(isOutput);
    expect(output.map((message) => message.seq)).toEqual(output.map((_, index) => index));
    expect(exit.seq).toBe(output.length);
    const text = output.map((message) => message.data).join("");
    expect(text.length).toBe(Array.from({ length: lines }, (_, index) => `${index + 1}\n`).join("").length);
    expect(text === Array.from({ length: lines }, (_, index) => `${index + 1}\n`).join(""), "the output, complete and in order").toBe(true);
  });

  it("reports the exit of a command that finished while its output was held back only after all of that output", async () => {
    let reading = false;
    const unread: (() => void)[] = [];
    const { shells, sent } = shellSessions(async () => {
      if (!reading) await new Promise<void>((resolve) => unread.push(resolve));
    });
    const sessionId = "3e8f4a0b-6c9d-4ebf-8a3b-4c5d6e7f8091";
    // Some 350 KB: more than a session has in flight, little enough for the rest to fit the pipe, so the command ends.
    const lines = 60_000;
    await shells.open({ sessionId, serviceId: web.id, argv: ["seq", String(lines)], tty: false, cols: 80, rows: 24, idleTimeoutSeconds: 900 });
    await eventually(() => unread.length >= 4, 5_000, "the session to wait for acknowledgements");
    await sleep(2_000);
    expect(sent.some(isExit)).toBe(false);

    reading = true;
    for (const acknowledge of unread.splice(0)) acknowledge();
    const exit = await eventually(() => sent.find(isExit), 10_000, "the exit");
    expect(exit.code).toBe(0);
    const output = sent.filter(isOutput);
    expect(exit.seq).toBe(output.length);
    expect(output.map((message) => message.data).join("")).toBe(Array.from({ length: lines }, (_, index) => `${index + 1}\n`).join(""));
  });

  it("keeps a terminal's last output when its shell exits while that output is held back", async () => {
    let reading = false;
    const unread: (() => void)[] = [];
    const { shells, sent } = shellSessions(async () => {
      if (!reading) await new Promise<void>((resolve) => unread.push(resolve));
    });
    const sessionId = "6b1c7d3e-9f0a-4b2c-8d4e-5f6a7b8c9d0e";
    await shells.open({ sessionId, serviceId: web.id, tty: true, cols: 80, rows: 24, idleTimeoutSeconds: 900 });
    // Four blocks of 64 Ki characters, each one acknowledged message: the session then waits for
    // its client, and the last lines and the exit come while it does (they fit the terminal's buffers).
    const lines = 5_000;
    shells.input({ sessionId, seq: 0, data: `for i in 1 2 3 4; do printf "%065536d" 0; sleep 0.3; done; seq ${lines}; exit 5\n` });
    await eventually(() => unread.length >= 4, 10_000, "the session to wait for acknowledgements");
    // Longer than node-pty reads a terminal whose process exited (200 ms).
    await sleep(1_500);
    expect(sent.some(isExit)).toBe(false);

    reading = true;
    for (const acknowledge of unread.splice(0)) acknowledge();
    const exit = await eventually(() => sent.find(isExit), 10_000, "the exit");
    expect(exit.code).toBe(5);
    const output = sent.filter(isOutput);
    expect(exit.seq).toBe(output.length);
    const text = output.map((message) => message.data).join("");
    const tail = Array.from({ length: lines }, (_, index) => `${index + 1}\r\n`).join("");
    expect(text.includes(tail), `the last lines, complete (the output ends with ${JSON.stringify(text.slice(-40))})`).toBe(true);
  });

  it("ends a session whose relay falls silent, not one it keeps alive, nor one of a control plane that sends no keepalives", async () => {
    const { shells, sent } = shellSessions();
    const open = (sessionId: string, keepaliveSeconds?: number) =>
      shells.open({ sessionId, serviceId: web.id, tty: true, cols: 80, rows: 24, idleTimeoutSeconds: 900, keepaliveSeconds });
    const kept = "2d7e3f9a-5b8c-4dae-9f20-3b4c5d6e7f80";
    const orphaned = "3e8f4a0b-6c9d-4ebf-a031-4c5d6e7f8091";
    const unwatched = "4f9a5b1c-7dae-4fc0-b142-5d6e7f8091a2";
    await open(kept, 1);
    await open(orphaned, 1);
    await open(unwatched);
    // The relay of `kept` says so twice a second, naming another engine's session too; the
    // relay of `orphaned` (its web process died) says nothing more after the open.
    const keeping = setInterval(() => shells.keepalive({ sessionIds: [kept, "5a0b6c2d-8ebf-4ad1-8253-6e7f8091a2b3"] }), 500);
    try {
      const exitOf = (sessionId: string) => sent.find((message): message is ShellExit => message.sessionId === sessionId && "code" in message);
      const ended = await eventually(() => exitOf(orphaned), 6_000, "the silent relay's session to end");
      expect(ended.reason).toBe("its client's web process fell silent (nothing heard for 3 seconds)");
      await sleep(1_500);
      expect(exitOf(kept)).toBeUndefined();
      expect(exitOf(unwatched)).toBeUndefined();
      expect(shells.size).toBe(2);
    } finally {
      clearInterval(keeping);
      shells.closeAll("test over");
    }
    await eventually(() => shells.size === 0, 5_000, "the sessions to end");
  });

  it("samples CPU, memory and the router's traffic of the live release", async () => {
    await engine.metrics!();
    for (let i = 0; i < 40; i++) await env.get("web-test.localhost");
    for (let i = 0; i < 5; i++) await env.get("web-test.localhost", "/fail");
    await env.get("web-test.localhost", "/alloc?mb=150");
    // Not a wait for something to happen: rates are counted over the interval between two samples.
    await sleep(300);
    const [sample] = await engine.metrics!();
    expect(sample).toMatchObject({ serviceId: web.id, restarts: 0, memoryLimitBytes: null });
    expect(sample!.requestsPerSecond).toBeGreaterThan(0);
    expect(sample!.errorsPerSecond).toBeGreaterThan(0);
    expect(sample!.p50Ms).not.toBeNull();
    expect(sample!.p99Ms!).toBeGreaterThanOrEqual(sample!.p50Ms!);
    // The app holds 150 MiB more than it started with.
    expect(sample!.memoryBytes).toBeGreaterThan(150 * 1024 * 1024);
  });

  it("enforces a memory limit: a release that exceeds it is killed, restarted, and the reason reported", async (context) => {
    const host = detectCgroups();
    if (skipWithout(host.kind === "none" ? `cgroups that enforce memory limits (${host.reason})` : null)) return context.skip();
    const deploy = task("DEPLOY", [hog]);
    await engine.execute(deploy);
    expect(env.final(deploy.deploymentId)?.status).toBe("succeeded");
    expect(env.lines.some((line) => line.text === `Limits: memory 128 MiB, 0.5 CPU, enforced through ${host.kind}`)).toBe(true);
    const [before] = (await engine.metrics!()).filter((sample) => sample.serviceId === hog.id);
    expect(before?.memoryLimitBytes).toBe(128 * 1024 * 1024);

    await env.get("hog-test.localhost", "/alloc?mb=300").catch(() => undefined);
    const state = await eventually(
      () => engine.services().find((s) => s.serviceId === hog.id && s.restarts === 1 && s.state === "running"),
      15_000,
      "the restart",
    );
    expect(state.lastRestart).toMatchObject({ oomKilled: true, reason: "was killed for exceeding its memory limit of 128 MiB" });
    expect(env.lines.some((line) => line.stream.kind === "service" && line.text.includes("killed for exceeding its memory limit of 128 MiB"))).toBe(true);
    await eventually(async () => (await env.get("hog-test.localhost")).status === 200, 10_000, "served again");
  });
});
