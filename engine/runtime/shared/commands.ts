import { spawn } from "node:child_process";
import { StringDecoder } from "node:string_decoder";
import { killSwitch } from "./kill-switch";
import { engineBoundTrackingId, killTracked, TRACKING_VAR } from "./leftover-processes";
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
 * How long a command's output is still read once its process exited. What it wrote before it
 * exited is in the pipes already and arrives within milliseconds; a process it left behind
 * (`server &`, a `setsid` daemon) may hold the pipes open for as long as it lives, and the
 * command must not last that long (CI systems end a step with its own process too).
 */
export const OUTPUT_GRACE_MS = 1_000;

/**
 * Runs a build-time command in its own process group, streaming complete lines to `onLine`.
 * A timeout or an abort kills the whole group (a build's children included). The command ends
 * when its process exits: its output is read to the end or for OUTPUT_GRACE_MS more, then what it
 * left running (its group, and what carries its tracking id: leftover-processes.ts) is killed.
 * All of it is killed too when the engine dies (as the sandbox's --die-with-parent does).
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
  // Bound to the engine: a build the engine left by dying (a SIGKILL, the OOM killer) is not
  // built on beside the one the next engine starts for the same deployment.
  const trackingId = engineBoundTrackingId();
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: childEnv({ ...options.env, [TRACKING_VAR]: trackingId }),
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
    const out = lineSplitter((line) => options.onLine("stdout", line));
    const err = lineSplitter((line) => options.onLine("stderr", line));
    child.stdout.on("data", out.push);
    child.stderr.on("data", err.push);
    let spawnError: Error | null = null;
    child.on("error", (error) => {
      spawnError = error;
    });
    let ended = false;
    let graceTimer: NodeJS.Timeout | undefined;
    const end = (code: number | null, signal: NodeJS.Signals | null) => {
      if (ended) return;
      ended = true;
      clearTimeout(graceTimer);
      deadline.dispose();
      // Stop waiting for what still holds the pipes: no more output is read past this point.
      child.stdout.destroy();
      child.stderr.destroy();
      out.flush();
      err.flush();
      if (spawnError) options.onLine("stderr", `${command}: ${spawnError.message}`);
      // Members of the group that outlive the leader (daemonized helpers) must not outlive the build.
      if (child.pid !== undefined) signalGroup(child.pid, "SIGKILL");
      // Nor those that left the group (setsid), found by the id they inherited.
      void killTracked(trackingId).then(() => resolve({ code: spawnError ? 127 : code, signal, timedOut: deadline.timedOut, aborted: deadline.aborted }));
    };
    // The exit code is the command's own process's, whenever its output ends.
    child.once("exit", (code, signal) => {
      graceTimer = setTimeout(() => end(code, signal), OUTPUT_GRACE_MS);
    });
    child.once("close", (code, signal) => end(code, signal));
  });
}

/**
 * The longest piece of a line passed on at once, in characters: output that never ends its line
 * (a progress bar redrawn with \r, a minified bundle, binary) is passed on in pieces rather than
 * kept whole, which past V8's string limit would throw in a stream listener and end the engine.
 * The log tailer reads long lines of a release's log in pieces of the same size (log-tailer.ts).
 */
export const LINE_PIECE_MAX = 256 * 1024;

/**
 * Cuts a stream of output into lines (without their \n or \r\n), each line longer than
 * LINE_PIECE_MAX in pieces. Only the new text is searched for newlines, so a long line costs
 * its length once, not once per chunk.
 */
function lineSplitter(onLine: (line: string) => void) {
  // A character split across two chunks is decoded whole, not as two replacement characters.
  const decoder = new StringDecoder("utf8");
  let rest = "";
  return {
    push: (chunk: Buffer) => {
      const text = decoder.write(chunk);
      let start = 0;
      for (let newline = text.indexOf("\n"); newline >= 0; newline = text.indexOf("\n", start)) {
        onLine((rest + text.slice(start, newline)).replace(/\r$/, ""));
        rest = "";
        start = newline + 1;
      }
      rest += text.slice(start);
      while (rest.length > LINE_PIECE_MAX) {
        const end = pieceEnd(rest);
        onLine(rest.slice(0, end));
        rest = rest.slice(end);
      }
    },
    flush: () => {
      rest += decoder.end();
      if (rest) onLine(rest);
      rest = "";
    },
  };
}

/**
 * Where the first piece of a too-long line ends: before a progress bar's last redraw (\r), or
 * else after the last space, in the piece's second half. Secrets are masked line by line, so a
 * cut through one would leave both halves readable; a cut between words rarely goes through one.
 */
function pieceEnd(line: string): number {
  const redraw = line.lastIndexOf("\r", LINE_PIECE_MAX - 1);
  if (redraw >= LINE_PIECE_MAX / 2) return redraw;
  const afterSpace = line.lastIndexOf(" ", LINE_PIECE_MAX - 2) + 1;
  if (afterSpace >= LINE_PIECE_MAX / 2) return afterSpace;
  // A character beyond the BMP is two UTF-16 units: the cut keeps them together.
  const code = line.charCodeAt(LINE_PIECE_MAX - 1);
  return code >= 0xd800 && code <= 0xdbff ? LINE_PIECE_MAX - 1 : LINE_PIECE_MAX;
}

// Where failures quote a command's output from: its last lines, and the first that says what went wrong.
export { createLineTail } from "./line-tail";
