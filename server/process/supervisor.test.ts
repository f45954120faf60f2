import fs from "node:fs";
import { Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createLinePrefixer } from "./prefix-lines";
import { isReadyMessage } from "./readiness";
import { createSupervisor, type ChildExit, type ChildSpec, type Supervisor } from "./supervisor";

/** Collects what the supervisor writes, as the lines a terminal would show. */
function terminal() {
  let text = "";
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return {
    stream,
    lines: () => text.split("\n").filter((line) => line !== ""),
    async waitFor(needle: string, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (!text.includes(needle)) {
        if (Date.now() > deadline) throw new Error(`Timed out waiting for ${JSON.stringify(needle)} in:\n${text}`);
        await sleep(20);
      }
    },
  };
}

function node(name: string, script: string, extra: Partial<ChildSpec> = {}): ChildSpec {
  return { name, command: process.execPath, args: ["-e", script], ...extra };
}

/** A service that reports readiness, and on SIGTERM says so and takes a moment to shut down. */
const service = `
  process.on("SIGTERM", () => { console.log("got SIGTERM"); setTimeout(() => process.exit(0), 100); });
  console.log("ready");
  setInterval(() => {}, 1000);
`;

let supervisor: Supervisor | undefined;
afterEach(() => {
  supervisor?.kill();
  supervisor = undefined;
});

describe("createLinePrefixer", () => {
  it("labels whole lines, however the chunks are cut", () => {
    const written: string[] = [];
    const prefixer = createLinePrefixer("web │ ", (text) => written.push(text));
    prefixer.push("hel");
    prefixer.push("lo\r\nwor");
    prefixer.push(Buffer.from([0xe2, 0x94]));
    prefixer.push(Buffer.from([0x82, 0x0a]));
    prefixer.push("tail without newline");
    prefixer.flush();
    expect(written.join("")).toBe("web │ hello\nweb │ wor│\nweb │ tail without newline\n");
  });
});

describe("createSupervisor", () => {
  it("prefixes each line of a child's stdout and stderr with its padded name", async () => {
    const out = terminal();
    const err = terminal();
    supervisor = createSupervisor({ stdout: out.stream, stderr: err.stream, nameWidth: 6 });
    const exit = await supervisor.run(
      node("web", `process.stdout.write("hel"); setTimeout(() => { process.stdout.write("lo\\nworld"); console.error("oops"); }, 50);`),
    );
    expect(exit).toEqual({ name: "web", code: 0, signal: null });
    expect(out.lines()).toEqual(["web    │ hello", "web    │ world"]);
    expect(err.lines()).toEqual(["web    │ oops"]);
  });

  it("stops children one at a time, most recently started first", async () => {
    const out = terminal();
    supervisor = createSupervisor({ stdout: out.stream, stderr: out.stream });
    const children = ["web", "worker", "engine"].map((name) => supervisor!.start(node(name, service)));
    for (const name of ["web", "worker", "engine"]) await out.waitFor(`${name.padEnd(6)} │ ready`);

    const outcome = await supervisor.stop();
    expect(outcome).toEqual({ unexpectedExit: null });
    expect(out.lines().filter((line) => !line.endsWith("ready"))).toEqual([
      "engine │ got SIGTERM",
      "engine │ stopped",
      "worker │ got SIGTERM",
      "worker │ stopped",
      "web    │ got SIGTERM",
      "web    │ stopped",
    ]);
    for (const child of children) expect(child.running).toBe(false);
    await expect(supervisor.stopped).resolves.toEqual({ unexpectedExit: null });
  });

  it("kills a child that ignores SIGTERM once its stop timeout has passed", async () => {
    const out = terminal();
    supervisor = createSupervisor({ stdout: out.stream, stderr: out.stream, stopTimeoutMs: 300 });
    const stubborn = supervisor.start(
      node("worker", `process.on("SIGTERM", () => console.log("ignoring")); console.log("ready"); setInterval(() => {}, 1000);`),
    );
    await out.waitFor("ready");
    await supervisor.stop();
    await expect(stubborn.exited).resolves.toEqual({ name: "worker", code: null, signal: "SIGKILL" });
    expect(out.lines()).toContain("worker │ did not stop within 0.3 s; sending SIGKILL");
  });

  it("restarts a crashed child after a pause, says so, and keeps the others running", async () => {
    const out = terminal();
    supervisor = createSupervisor({ stdout: out.stream, stderr: out.stream });
    const web = supervisor.start(node("web", service));
    await out.waitFor("web    │ ready");
    // Crashes on its first start only: the marker file tells the restarted process it ran before.
    const marker = `/tmp/slipway-supervisor-${process.pid}-${Date.now()}`;
    const engine = supervisor.start(
      node(
        "engine",
        `const fs = require("fs"); if (!fs.existsSync(${JSON.stringify(marker)})) { fs.writeFileSync(${JSON.stringify(marker)}, ""); console.log("crashing"); process.exit(3); } ${service}`,
        {
          restart: { baseMs: 50, maxMs: 50 },
        },
      ),
    );
    await out.waitFor("engine │ ready");
    expect(out.lines()).toEqual(
      expect.arrayContaining([
        "engine │ crashing",
        expect.stringMatching(/^engine │ exited unexpectedly \(code 3\); restarting in 0\.\d s$/),
        "engine │ restarting (restart 1)",
      ]),
    );
    expect(engine.restarts).toBe(1);
    expect(engine.running).toBe(true);
    expect(web.running).toBe(true);
    expect(supervisor.stopping).toBe(false);

    await expect(supervisor.stop()).resolves.toEqual({ unexpectedExit: null });
    await expect(engine.exited).resolves.toEqual({ name: "engine", code: 0, signal: null });
  });

  it("gives up on a crash loop, saying why, and stops everything", async () => {
    const out = terminal();
    const onUnexpectedExit = vi.fn<(exit: ChildExit) => void>();
    supervisor = createSupervisor({ stdout: out.stream, stderr: out.stream, onUnexpectedExit });
    const web = supervisor.start(node("web", service));
    await out.waitFor("ready");
    const worker = supervisor.start(node("worker", `process.exit(3)`, { restart: { baseMs: 10, maxMs: 40, maxFailedStarts: 3 } }));

    const outcome = await supervisor.stopped;
    expect(outcome.unexpectedExit).toEqual({ name: "worker", code: 3, signal: null });
    expect(worker.restarts).toBe(2);
    expect(onUnexpectedExit).toHaveBeenCalledTimes(1);
    await expect(web.exited).resolves.toEqual({ name: "web", code: 0, signal: null });
    expect(out.lines()).toEqual(
      expect.arrayContaining([
        "worker │ exited 3 times in a row, each within 30 s of starting (last: code 3); stopping everything",
        "web    │ got SIGTERM",
        "web    │ stopped",
      ]),
    );
  });

  it("counts only failed starts toward a crash loop: a process that said it was ready may exit any number of times", async () => {
    const out = terminal();
    supervisor = createSupervisor({ stdout: out.stream, stderr: out.stream });
    // Every third process says it is ready before it exits (a worker whose database restarts);
    // the two before it exit without (killed while booting). Three failed starts in a row would
    // be a loop; two, then a ready one, never are.
    const counter = `/tmp/slipway-supervisor-starts-${process.pid}-${Date.now()}`;
    const script = `
      const fs = require("fs");
      const start = Number(fs.existsSync(${JSON.stringify(counter)}) ? fs.readFileSync(${JSON.stringify(counter)}, "utf8") : 0) + 1;
      fs.writeFileSync(${JSON.stringify(counter)}, String(start));
      if (process.env.NEVER_READY || start % 3 !== 0) process.exit(3);
      process.send({ type: "ready" }, () => setTimeout(() => process.exit(3), 10));
    `;
    const worker = (env?: NodeJS.ProcessEnv) =>
      node("worker", script, { env, ipc: true, readyWhen: isReadyMessage, restart: { baseMs: 10, maxMs: 20, maxFailedStarts: 3 } });
    const restarting = supervisor.start(worker());
    while (restarting.restarts < 10 && !supervisor.stopping) await sleep(20);
    expect(supervisor.stopping).toBe(false);
    await supervisor.stop();

    // The same child, never ready: its third exit in a row is a loop, said in readiness terms.
    const out2 = terminal();
    supervisor = createSupervisor({ stdout: out2.stream, stderr: out2.stream });
    supervisor.start(worker({ ...process.env, NEVER_READY: "1" }));
    const outcome = await supervisor.stopped;
    expect(outcome.unexpectedExit).toEqual({ name: "worker", code: 3, signal: null });
    expect(out2.lines()).toContain("worker │ exited 3 times in a row, each before it was ready (last: code 3); stopping everything");
    fs.rmSync(counter);
  });

  it("stops everything when a child that must not restart dies on its own", async () => {
    const out = terminal();
    supervisor = createSupervisor({ stdout: out.stream, stderr: out.stream });
    supervisor.start(node("web", service));
    await out.waitFor("ready");
    supervisor.start(node("worker", `setTimeout(() => process.exit(3), 100);`, { restart: false }));
    const outcome = await supervisor.stopped;
    expect(outcome.unexpectedExit).toEqual({ name: "worker", code: 3, signal: null });
    expect(out.lines()).toContain("worker │ exited unexpectedly (code 3); stopping everything");
  });

  it("cancels a restart that waits when it is asked to stop", async () => {
    const out = terminal();
    supervisor = createSupervisor({ stdout: out.stream, stderr: out.stream });
    const engine = supervisor.start(node("engine", `process.exit(4)`, { restart: { baseMs: 60_000, maxMs: 60_000 } }));
    await out.waitFor("; restarting in");
    await supervisor.stop();
    await expect(engine.exited).resolves.toEqual({ name: "engine", code: 4, signal: null });
    expect(engine.restarts).toBe(0);
  });

  it("treats a child that cannot be spawned as an unexpected exit", async () => {
    const out = terminal();
    supervisor = createSupervisor({ stdout: out.stream, stderr: out.stream });
    supervisor.start({ name: "engine", command: "/nonexistent/slipway-engine", args: [] });
    const outcome = await supervisor.stopped;
    expect(outcome.unexpectedExit?.error?.message).toMatch(/ENOENT/);
    expect(out.lines().join("\n")).toMatch(/engine .*could not be started .*ENOENT.*; stopping everything/);
  });

  it("lets a one-shot run finish without stopping anything, and refuses new children once stopping", async () => {
    const out = terminal();
    supervisor = createSupervisor({ stdout: out.stream, stderr: out.stream });
    const web = supervisor.start(node("web", service));
    await expect(supervisor.run(node("build", `process.exit(2)`))).resolves.toMatchObject({ name: "build", code: 2 });
    expect(supervisor.stopping).toBe(false);
    expect(web.running).toBe(true);

    await supervisor.stop();
    expect(() => supervisor!.start(node("late", service))).toThrow(/stopping/);
  });
});
