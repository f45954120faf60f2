import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import type { EngineConfig } from "./config";
import { tsxImportUrl } from "./router/router-process";
import { isSameProcessAlive, processStartTime } from "./runtime/local/processes";
import { readJson, writeJsonAtomic } from "./runtime/shared/files";

/**
 * The engine as a detached process of its own (issue 12): `npm start` starts the local engine
 * this way, so that Ctrl-C stops the control plane but not the engine, whose cron jobs keep
 * their schedule. Every engine records itself in `<home>/engine.pid` once it has started (its
 * pid, the kernel's start time of that pid, and what it runs: a stamp of its code and one of its
 * configuration); the next `npm start` keeps an engine that is alive and runs the same code and
 * configuration, and replaces one that does not.
 */

const engineDir = path.dirname(fileURLToPath(import.meta.url));
const mainFile = path.join(engineDir, "main.ts");

export const runningEngineSchema = z.object({
  pid: z.number().int().positive(),
  startTime: z.number(),
  /** A hash of the engine's code (its sources and the dependency lock file): a change calls for a new engine. */
  build: z.string(),
  /** A hash of its configuration (URL, token, home, router port …): a change calls for a new engine too. */
  config: z.string(),
  startedAt: z.string(),
});
export type RunningEngine = z.infer<typeof runningEngineSchema>;

export function daemonFiles(home: string) {
  return { pidFile: path.join(home, "engine.pid"), logFile: path.join(home, "engine.log") };
}

/** What an engine runs: the hash of its code, and the hash of its configuration. */
export type EngineIdentity = Pick<RunningEngine, "build" | "config">;

export async function engineIdentity(config: EngineConfig): Promise<EngineIdentity> {
  const hash = createHash("sha256");
  const sources = (await fsp.readdir(engineDir, { recursive: true })).filter((file) => file.endsWith(".ts") && !file.endsWith(".test.ts")).sort();
  for (const file of sources)
    hash
      .update(file)
      .update("\0")
      .update(await fsp.readFile(path.join(engineDir, file)))
      .update("\0");
  // The engine's dependencies: a lock file that changed (an upgraded croner) is new code too.
  const lockFile = await fsp.readFile(path.join(engineDir, "..", "package-lock.json")).catch(() => null);
  if (lockFile) hash.update(lockFile);
  return { build: hash.digest("hex").slice(0, 16), config: createHash("sha256").update(JSON.stringify(config)).digest("hex").slice(0, 16) };
}

/** Called by the engine once it has started: from now on it is the engine of this home. */
export async function recordRunningEngine(home: string, identity: EngineIdentity): Promise<void> {
  const startTime = processStartTime(process.pid);
  if (startTime === null) return;
  const record: RunningEngine = { pid: process.pid, startTime, ...identity, startedAt: new Date().toISOString() };
  await writeJsonAtomic(daemonFiles(home).pidFile, record);
}

/** Called by the engine as it stops: the pid file goes, unless another engine has written it since. */
export function forgetRunningEngine(home: string): void {
  const { pidFile } = daemonFiles(home);
  try {
    const recorded = runningEngineSchema.parse(JSON.parse(fs.readFileSync(pidFile, "utf8")));
    if (recorded.pid === process.pid) fs.rmSync(pidFile, { force: true });
  } catch {
    // No pid file, or not one this engine can read: nothing of its own to remove.
  }
}

/** The engine recorded in this home, if it is still that very process (not a recycled pid). */
export async function runningEngine(home: string): Promise<RunningEngine | null> {
  const recorded = await readJson(daemonFiles(home).pidFile, runningEngineSchema).catch(() => null);
  return recorded && isSameProcessAlive(recorded.pid, recorded.startTime) ? recorded : null;
}

export type EnsureOutcome =
  { outcome: "kept"; engine: RunningEngine } | { outcome: "started"; engine: RunningEngine; replaced?: { pid: number; because: string } };

/**
 * Keeps the engine of this home if it runs this code with this configuration; otherwise stops
 * it (apps and the router keep running; the new engine adopts them) and starts one, detached,
 * with its output appended to `<home>/engine.log`. Resolves once the new engine has started.
 */
export async function ensureEngine(options: {
  config: EngineConfig;
  env: NodeJS.ProcessEnv;
  startTimeoutMs?: number;
  stopGraceMs?: number;
}): Promise<EnsureOutcome> {
  const { home } = options.config;
  const identity = await engineIdentity(options.config);
  const current = await runningEngine(home);
  let replaced: { pid: number; because: string } | undefined;
  if (current) {
    if (current.build === identity.build && current.config === identity.config) return { outcome: "kept", engine: current };
    replaced = { pid: current.pid, because: current.build !== identity.build ? "its code changed" : "its configuration changed" };
    await stopProcess(current, options.stopGraceMs);
  }
  const engine = await startEngine(options.config, options.env, options.startTimeoutMs ?? 120_000);
  return { outcome: "started", engine, ...(replaced ? { replaced } : {}) };
}

/** Stops the engine of this home, if one runs; its pid, or null. Apps and the router keep running. */
export async function stopEngine(home: string, graceMs?: number): Promise<number | null> {
  const current = await runningEngine(home);
  if (!current) return null;
  await stopProcess(current, graceMs);
  return current.pid;
}

async function startEngine(config: EngineConfig, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<RunningEngine> {
  const { logFile } = daemonFiles(config.home);
  await fsp.mkdir(config.home, { recursive: true });
  // One log per engine process: the previous one is kept beside it.
  await fsp.rename(logFile, `${logFile}.1`).catch(() => undefined);
  const log = fs.openSync(logFile, "a", 0o600);
  const childEnv: NodeJS.ProcessEnv = { ...env, SLIPWAY_ENGINE_HOME: config.home };
  // Inherited from a parent that has an IPC channel with its own parent: the engine has none.
  delete childEnv.NODE_CHANNEL_FD;
  delete childEnv.NODE_CHANNEL_SERIALIZATION_MODE;
  const child = spawn(process.execPath, ["--import", tsxImportUrl(), mainFile], {
    // Not the repository: a checkout may be moved or removed while its engine runs on.
    cwd: config.home,
    detached: true,
    stdio: ["ignore", log, log],
    env: childEnv,
  });
  fs.closeSync(log);
  child.unref();
  let exited: string | null = null;
  child.once("exit", (code, signal) => {
    exited = signal ? `signal ${signal}` : `code ${code}`;
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && exited === null) {
    const recorded = await runningEngine(config.home);
    if (recorded && recorded.pid === child.pid) return recorded;
    await sleep(100);
  }
  if (exited === null) child.kill("SIGKILL");
  const tail = (await fsp.readFile(logFile, "utf8").catch(() => "")).split("\n").slice(-15).join("\n");
  throw new Error(`the engine did not start (${exited ?? `not started within ${timeoutMs / 1000} s`}); ${logFile}:\n${tail}`);
}

/**
 * SIGTERM to the engine's pid only (its agent stops; apps, databases and the router run in
 * process groups of their own and keep running), SIGKILL after the grace period.
 */
async function stopProcess(engine: RunningEngine, graceMs = 15_000): Promise<void> {
  const signal = (name: NodeJS.Signals) => {
    if (!isSameProcessAlive(engine.pid, engine.startTime)) return;
    try {
      process.kill(engine.pid, name);
    } catch (error) {
      // ESRCH: it ended between the check and the signal, which is what we wanted.
      if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
    }
  };
  signal("SIGTERM");
  const deadline = Date.now() + graceMs;
  while (isSameProcessAlive(engine.pid, engine.startTime)) {
    if (Date.now() > deadline) {
      signal("SIGKILL");
      if (Date.now() > deadline + 5_000) throw new Error(`the engine (pid ${engine.pid}) did not stop, even after SIGKILL`);
    }
    await sleep(100);
  }
}
