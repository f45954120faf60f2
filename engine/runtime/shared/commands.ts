import { spawn } from "node:child_process";
import { StringDecoder } from "node:string_decoder";
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
    const out = lineSplitter((line) => options.onLine("stdout", line));
    const err = lineSplitter((line) => options.onLine("stderr", line));
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
