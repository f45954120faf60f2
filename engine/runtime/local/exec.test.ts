import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import type { ExecSession } from "../runtime";
import { startLocalExec } from "./exec";

/**
 * Shells and `slipway exec` without the sandbox (a trusted cluster, a host without bubblewrap),
 * where nothing but the engine ends what a session started. A session ends when its process
 * exits, whatever it left running in the background, and takes that with it; and no session
 * outlives the engine, however the engine ends.
 */
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

/** Each test's processes carry a mark of their own, to be found (and, after the test, killed) by it. */
let mark = "";
const MARK_VAR = "SLIPWAY_EXEC_TEST_MARK";

/** The live processes carrying this test's mark (zombies have no environment, so none of them). */
function marked(): number[] {
  const needle = Buffer.from(`${MARK_VAR}=${mark}\0`);
  return fs.readdirSync("/proc").flatMap((entry) => {
    if (!/^\d+$/.test(entry)) return [];
    try {
      return fs.readFileSync(`/proc/${entry}/environ`).includes(needle) ? [Number(entry)] : [];
    } catch {
      return [];
    }
  });
}

function start(script: string, tty: boolean): ExecSession {
  return startLocalExec(["sh", "-c", script], { tty, cwd: os.tmpdir(), env: { PATH: process.env.PATH ?? "/usr/bin:/bin", [MARK_VAR]: mark } });
}

/** The session's output and exit code, or a failure once `ms` passed without the session ending. */
async function finish(session: ExecSession, ms: number): Promise<{ output: string; code: number | null }> {
  let output = "";
  session.on("data", (chunk: Buffer | string) => (output += chunk.toString()));
  const ended = new Promise<void>((resolve) => session.once("end", resolve));
  const timeout = sleep(ms).then(() => {
    throw new Error(`the session had not ended after ${ms} ms; output so far: ${JSON.stringify(output)}`);
  });
  const code = await Promise.race([Promise.all([ended, session.exited]).then(([, exitCode]) => exitCode), timeout]);
  return { output, code };
}

async function eventuallyNone(ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const pids = marked();
    if (pids.length === 0 || Date.now() > deadline) return pids;
    await sleep(50);
  }
}

describe("local shells and execs without the sandbox", () => {
  afterEach(() => {
    for (const pid of marked()) process.kill(pid, "SIGKILL");
  });

  it.each([
    ["pipes", false],
    ["a terminal", true],
  ])("with %s, a session ends when its process exits, with its exit code, and what it left running is stopped", async (_name, tty) => {
    mark = randomUUID();
    // A background job, one that ignores the terminal's hangup and a daemon in a session of its
    // own; the pause lets them start (and setsid leave) before the shell exits.
    const started = Date.now();
    const result = await finish(start("sleep 600 & nohup sleep 600 >/dev/null 2>&1 & setsid sleep 600 & sleep 0.3; echo hi; exit 3", tty), 5_000);
    expect(result.output.replace(/\r/g, "")).toBe("hi\n");
    expect(result.code).toBe(3);
    expect(Date.now() - started).toBeLessThan(3_000);
    // Gone by the time the session says it ended, not eventually.
    expect(marked()).toEqual([]);
  });

  it("reads all that a process wrote before it exited, however long its reader held the output back", async () => {
    mark = randomUUID();
    // Output that still waits to be read when the process exits: the engine reads ahead a few
    // hundred kB at most, so the process's end of its output (a socket, as Node makes stdio pipes)
    // is made to hold 2 MiB and it writes 1 MB. (A host whose net.core.wmem_max is smaller makes
    // the process wait for the reader instead, and the test proves less.) The job it leaves holds
    // the output open.
    const session = start(
      `sleep 600 & perl -MSocket -e 'setsockopt(STDOUT, SOL_SOCKET, SO_SNDBUF, 2097152) or die "SO_SNDBUF: $!"; print "x" x 1000000'; echo; echo done`,
      false,
    );
    session.pause();
    await sleep(1_500);
    const result = await finish(session.resume(), 10_000);
    expect(result.output.length).toBe(1_000_006);
    expect(result.output.endsWith("x\ndone\n")).toBe(true);
    expect(result.code).toBe(0);
    expect(marked()).toEqual([]);
  });

  it.each([
    ["pipes", ""],
    ["a terminal", "tty"],
  ])("with %s, nothing a session runs outlives an engine that was SIGKILLed", async (_name, mode) => {
    mark = randomUUID();
    const engine = spawn(
      process.execPath,
      ["--import", "tsx", path.join(repoRoot, "test/support/exec-kill-engine.ts"), "sleep 600 & setsid sleep 600 & echo running; sleep 600", mode],
      { cwd: repoRoot, env: { ...process.env, SLIPWAY_EXEC_KILL_ENV: JSON.stringify({ [MARK_VAR]: mark }) }, stdio: ["ignore", "pipe", "inherit"] },
    );
    let output = "";
    engine.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    for (const deadline = Date.now() + 20_000; !(output.includes("running") && marked().length >= 4);) {
      if (Date.now() > deadline) throw new Error(`the exec did not start: ${output}`);
      await sleep(100);
    }
    const exited = new Promise((resolve) => engine.once("exit", resolve));
    engine.kill("SIGKILL");
    await exited;
    expect(await eventuallyNone(3_000)).toEqual([]);
  });
});
