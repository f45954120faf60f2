import path from "node:path";
import { localEngineReport, type LocalEngineReport } from "../../engine/protocol/local-engine";
import type { ChildSpec } from "./supervisor";

/**
 * The local engine under `npm start` (issue 12): the supervised "engine" child is the engine's
 * keeper (engine/daemon-main.ts), which keeps a detached engine running, shows its log and
 * reports it here. Ctrl-C stops the keeper, not the engine: cron jobs keep their schedule and
 * the engine reconnects to the next `npm start`, which keeps it (same code, same configuration)
 * or replaces it. The engine program is started by argv only: the web side never loads its code.
 */
export type LocalEngineCommand = {
  repoRoot: string;
  /** Node's arguments before the script (the TypeScript loader, preloads). */
  nodeArgs: readonly string[];
  /** The engine's environment: its URL, token, home and router port. */
  env: NodeJS.ProcessEnv;
};

const daemonMain = (repoRoot: string) => path.join(repoRoot, "engine", "daemon-main.ts");

/** The supervised child that keeps the local engine; `onReport` hears which engine serves, once per keeper start. */
export function localEngineKeeper(command: LocalEngineCommand, onReport: (report: LocalEngineReport) => void): ChildSpec {
  return {
    name: "engine",
    command: process.execPath,
    args: [...command.nodeArgs, daemonMain(command.repoRoot), "keep"],
    cwd: command.repoRoot,
    env: command.env,
    ipc: true,
    stoppedNote: "stopped showing the engine's log; the engine keeps running",
    // A keeper that reported its engine had started: its exit when that engine dies (killed,
    // crashed) starts a new one, and is not a failed start however often it happens.
    readyWhen: (message) => localEngineReport.safeParse(message).success,
    onSpawn(child) {
      child.on("message", (message: unknown) => {
        const report = localEngineReport.safeParse(message);
        if (report.success) onReport(report.data);
      });
    },
  };
}

/** A one-shot child that stops the local engine of `engineHome` (`npm start -- --stop-engine`). */
export function localEngineStopper(command: Omit<LocalEngineCommand, "env"> & { env: NodeJS.ProcessEnv; engineHome: string }): ChildSpec {
  return {
    name: "engine",
    command: process.execPath,
    args: [...command.nodeArgs, daemonMain(command.repoRoot), "stop"],
    cwd: command.repoRoot,
    env: { ...command.env, SLIPWAY_ENGINE_HOME: command.engineHome },
  };
}
