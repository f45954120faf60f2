import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { killProcessesUnder } from "../../../test/process-cleanup";
import { processStartTime } from "../local/processes";
import { type CommandResult, runCommand } from "./commands";

/**
 * A build step, a release command or a job that leaves a process running (`server & npm test`, a
 * `setsid` daemon) ends with its own process, keeps its output and exit code, and takes what it
 * left behind with it. Run without bubblewrap, as on a host that has none.
 */

let dir: string;
beforeEach(async () => {
  dir = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), "slipway-leftovers-")));
});
afterEach(async () => {
  // Without the fix the leftovers outlive the test: they run in `dir`, which finds them.
  await killProcessesUnder(dir);
  await fs.rm(dir, { recursive: true, force: true });
});

/** Runs a shell script as a step; fails, instead of waiting for the 30 s test timeout, when the step is still running after 10 s. */
async function step(script: string, timeoutMs = 20_000) {
  const lines: string[] = [];
  const started = Date.now();
  const run = runCommand({
    argv: ["/bin/sh", "-c", script],
    cwd: dir,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    timeoutMs,
    onLine: (_fd, line) => lines.push(line),
  });
  const stillRunning = new Promise<never>((_resolve, reject) =>
    setTimeout(() => reject(new Error(`step still running after 10 s; it printed ${JSON.stringify(lines)}`)), 10_000).unref(),
  );
  const result: CommandResult = await Promise.race([run, stillRunning]);
  return { result, lines, seconds: (Date.now() - started) / 1000 };
}

/** The pids a step printed on lines `pid <n>`. */
function pidsIn(lines: string[]): number[] {
  return lines.filter((line) => line.startsWith("pid ")).map((line) => Number(line.slice(4)));
}

/** True once the process is gone (or a zombie, which holds nothing). */
function gone(pid: number): boolean {
  return processStartTime(pid) === null;
}

describe("a step that leaves a process running", () => {
  it("ends when its own process exits, with its exit code and all it printed, and stops the background process", async () => {
    const { result, lines, seconds } = await step(`echo before; sleep 60 & echo "pid $!"; echo after; exit 3`);
    expect(result).toMatchObject({ code: 3, timedOut: false });
    expect(lines.filter((line) => !line.startsWith("pid "))).toEqual(["before", "after"]);
    expect(seconds).toBeLessThan(5);
    expect(gone(pidsIn(lines)[0]!)).toBe(true);
  });

  it("ends too when a setsid daemon holds its output, and the daemon (out of the step's process group) is stopped", async () => {
    const { result, lines, seconds } = await step(`setsid sh -c 'echo "pid $$"; exec sleep 60' & sleep 0.2; echo done`);
    expect(result.code).toBe(0);
    expect(lines).toContain("done");
    expect(seconds).toBeLessThan(5);
    const [daemon] = pidsIn(lines);
    expect(daemon).toBeDefined();
    expect(gone(daemon!)).toBe(true);
  });

  it("stops a daemon that let go of the step's output too (setsid, its output elsewhere)", async () => {
    const { result, lines } = await step(`setsid sh -c 'echo "pid $$"; exec sleep 60 >/dev/null 2>&1' & sleep 0.2`);
    expect(result.code).toBe(0);
    const [daemon] = pidsIn(lines);
    expect(daemon).toBeDefined();
    expect(gone(daemon!)).toBe(true);
  });

  it("times out even when a setsid daemon holds its output", async () => {
    const { result, lines, seconds } = await step(`setsid sh -c 'echo "pid $$"; exec sleep 60' & sleep 60`, 1_000);
    expect(result.timedOut).toBe(true);
    expect(seconds).toBeLessThan(5);
    expect(gone(pidsIn(lines)[0]!)).toBe(true);
  });

  it("loses none of the output written before the exit", async () => {
    // 2 MB, far more than a pipe holds, written while the leftover keeps the pipe open.
    const { result, lines } = await step(
      `sleep 60 & i=0; while [ $i -lt 20000 ]; do echo "line $i ................................................................................"; i=$((i+1)); done; echo last`,
    );
    expect(result.code).toBe(0);
    expect(lines).toHaveLength(20_001);
    expect(lines.at(-1)).toBe("last");
  });
});

describe("a step whose engine dies", () => {
  const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

  it("takes what it runs with it, a daemon too, when the engine is SIGKILLed", async () => {
    // The engine's side of the step as a process of its own, killed as the OOM killer would.
    const engine = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        path.join(repoRoot, "test/support/exec-kill-engine.ts"),
        `sleep 600 & echo "pid $!"; setsid sleep 600 & echo "pid $!"; sleep 600`,
        "command",
      ],
      { cwd: repoRoot, stdio: ["ignore", "pipe", "inherit"] },
    );
    let output = "";
    engine.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    for (const deadline = Date.now() + 20_000; pidsIn(output.split("\n")).length < 2; await sleep(100)) {
      if (Date.now() > deadline) throw new Error(`the step did not start: ${output}`);
    }
    const pids = pidsIn(output.split("\n"));
    const exited = new Promise((resolve) => engine.once("exit", resolve));
    engine.kill("SIGKILL");
    await exited;
    for (const deadline = Date.now() + 3_000; pids.some((pid) => !gone(pid)); await sleep(100)) {
      if (Date.now() > deadline) {
        for (const pid of pids.filter((pid) => !gone(pid))) process.kill(pid, "SIGKILL");
        throw new Error(`still running 3 s after their engine was killed: ${pids.join(", ")}`);
      }
    }
  });
});
