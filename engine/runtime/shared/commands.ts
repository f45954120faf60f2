import { spawn } from "node:child_process";
import { killSwitch } from "./kill-switch";
import { childEnv } from "./processes-env";

/**
 * Commands run to completion on the engine's host (git, builds, database tools, local jobs), each
 * in its own process group (spawned detached), so one signal reaches the command and its children.
 */

export function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

export type CommandResult = { code: number | null; signal: NodeJS.Signals | null; timedOut: boolean; aborted: boolean };

/**
 * Runs a build-time command in its own process group, streaming complete lines to `onLine`.
 * A timeout or an abort kills the whole group (a build's children included).
 */
export function runCommand(options: {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  timeoutMs: number;
  signal?: AbortSignal;
  onLine: (fd: "stdout" | "stderr", line: string) => void;
  /** Runs it as this OS user (database tools, which refuse root). */
  user?: { uid: number; gid: number } | null;
}): Promise<CommandResult> {
  const [command, ...args] = options.argv;
  if (!command) throw new Error("empty command");
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: childEnv(options.env),
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      ...(options.user ? { uid: options.user.uid, gid: options.user.gid } : {}),
    });
    const deadline = killSwitch({
      timeoutMs: options.timeoutMs,
      signal: options.signal,
      kill: () => {
        if (child.pid !== undefined) signalGroup(child.pid, "SIGKILL");
      },
    });
    const splitter = (fd: "stdout" | "stderr") => {
      let rest = "";
      return {
        push: (chunk: Buffer) => {
          const lines = (rest + chunk.toString("utf8")).split("\n");
          rest = lines.pop() ?? "";
          for (const line of lines) options.onLine(fd, line.replace(/\r$/, ""));
        },
        flush: () => {
          if (rest) options.onLine(fd, rest);
          rest = "";
        },
      };
    };
    const out = splitter("stdout");
    const err = splitter("stderr");
    child.stdout.on("data", out.push);
    child.stderr.on("data", err.push);
    let spawnError: Error | null = null;
    child.on("error", (error) => {
      spawnError = error;
    });
    child.on("close", (code, signal) => {
      deadline.dispose();
      out.flush();
      err.flush();
      if (spawnError) options.onLine("stderr", `${command}: ${spawnError.message}`);
      // Members of the group that outlive the leader (daemonized helpers) must not outlive the build.
      if (child.pid !== undefined) signalGroup(child.pid, "SIGKILL");
      resolve({ code: spawnError ? 127 : code, signal, timedOut: deadline.timedOut, aborted: deadline.aborted });
    });
  });
}

/** The last `max` lines a command printed (blank ones say nothing), for the message of its failure. */
export function createLineTail(max = 20) {
  const lines: string[] = [];
  return {
    push(line: string) {
      if (line.trim() === "") return;
      lines.push(line);
      if (lines.length > max) lines.shift();
    },
    text: () => lines.join("\n"),
  };
}
