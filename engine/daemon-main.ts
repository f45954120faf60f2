import fsp from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { loadEngineConfig } from "./config";
import { daemonFiles, ensureEngine, stopEngine, type RunningEngine } from "./daemon";
import type { LocalEngineReport } from "./protocol";
import { isSameProcessAlive } from "./runtime/local/processes";

/**
 * The local engine's keeper, the "engine" child of `npm start` (issue 12):
 *
 *   daemon-main.ts keep   keeps a detached engine running for SLIPWAY_ENGINE_HOME (the one
 *                         already there if it runs this code and configuration, else a new one),
 *                         reports it to `npm start` over IPC, shows its log, and exits when the
 *                         engine does, so that the supervisor starts the keeper, and so an
 *                         engine, again. SIGTERM ends the keeper only: the engine runs on.
 *   daemon-main.ts stop   stops the engine of SLIPWAY_ENGINE_HOME (`npm start -- --stop-engine`).
 */

const LOG_POLL_MS = 250;

async function keep(): Promise<void> {
  const config = loadEngineConfig(process.env);
  const ensured = await ensureEngine({ config, env: process.env });
  const { engine } = ensured;
  const { logFile } = daemonFiles(config.home);
  if (ensured.outcome === "kept") {
    say(`kept the engine already running (pid ${engine.pid}, since ${engine.startedAt}); its log: ${logFile}`);
  } else {
    const replaced = ensured.replaced ? `; it replaced pid ${ensured.replaced.pid}, whose ${ensured.replaced.because.replace(/^its /, "")}` : "";
    say(`started the engine (pid ${engine.pid}), detached: it keeps running when npm start stops${replaced}; its log: ${logFile}`);
  }
  const report: LocalEngineReport = { type: "local-engine", pid: engine.pid, outcome: ensured.outcome, logFile };
  process.send?.(report);
  // A new engine's log is all its own; of a kept one, only what comes from now on is news.
  const from =
    ensured.outcome === "kept"
      ? await fsp.stat(logFile).then(
          (stat) => stat.size,
          () => 0,
        )
      : 0;
  await follow(engine, logFile, from);
  say(`the engine (pid ${engine.pid}) exited; see ${logFile}`);
  process.exit(1);
}

/** Copies the engine's log to stdout as it grows, until the engine is gone. */
async function follow(engine: RunningEngine, logFile: string, from: number): Promise<void> {
  let offset = from;
  for (;;) {
    const alive = isSameProcessAlive(engine.pid, engine.startTime);
    offset = await copyNewOutput(logFile, offset);
    if (!alive) return;
    await sleep(LOG_POLL_MS);
  }
}

async function copyNewOutput(logFile: string, offset: number): Promise<number> {
  const handle = await fsp.open(logFile, "r").catch(() => null);
  if (!handle) return offset;
  try {
    const { size } = await handle.stat();
    // A log shorter than what was read is a new file: read it from its start.
    let position = size < offset ? 0 : offset;
    while (position < size) {
      const chunk = Buffer.alloc(Math.min(size - position, 64 * 1024));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, position);
      if (bytesRead === 0) break;
      process.stdout.write(chunk.subarray(0, bytesRead));
      position += bytesRead;
    }
    return position;
  } finally {
    await handle.close();
  }
}

async function stop(): Promise<void> {
  const home = path.resolve(z.object({ SLIPWAY_ENGINE_HOME: z.string().default(".slipway/engine") }).parse(process.env).SLIPWAY_ENGINE_HOME);
  const pid = await stopEngine(home);
  say(pid === null ? `no engine is running for ${home}` : `stopped the engine (pid ${pid}); deployed apps and the router keep running`);
}

function say(message: string): void {
  process.stdout.write(`${message}\n`);
}

// The keeper ends; the engine, in a process group of its own, does not hear of it.
for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => process.exit(0));

const command = process.argv[2];
const run = command === "keep" ? keep : command === "stop" ? stop : null;
if (!run) {
  process.stderr.write("usage: daemon-main.ts keep|stop (SLIPWAY_ENGINE_HOME and, for keep, the engine's configuration in the environment)\n");
  process.exit(2);
}
run().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
