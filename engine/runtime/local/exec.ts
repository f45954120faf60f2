import { spawn } from "node:child_process";
import fs from "node:fs";
import { Duplex } from "node:stream";
import * as pty from "node-pty";
import type { ExecOptions, ExecSession } from "../runtime";
import { StepError } from "../runtime";
import { childEnv } from "../shared/processes-env";

/**
 * A process started in a local release (a shell): in a pseudo-terminal (node-pty) when a TTY is
 * asked for, else with plain pipes (stdout and stderr merged, as a terminal shows them). Either
 * way it is returned as the runtime's ExecSession: writes go to the process's input, ending the
 * writable side ends its input (EOF), the readable side is its output.
 */
export function startLocalExec(argv: string[], options: ExecOptions & { cwd: string; env: Record<string, string> }): ExecSession {
  const [command, ...args] = argv;
  if (!command) throw new StepError("nothing to run");
  return options.tty ? ptySession(command, args, options) : pipeSession(command, args, options);
}

function exitedPromise() {
  let settle!: (code: number | null) => void;
  const exited = new Promise<number | null>((resolve) => (settle = resolve));
  return { exited, settle };
}

function ptySession(command: string, args: string[], options: ExecOptions & { cwd: string; env: Record<string, string> }): ExecSession {
  let term: pty.IPty;
  try {
    term = pty.spawn(command, args, {
      name: options.env.TERM ?? "xterm-256color",
      cols: options.cols ?? 80,
      rows: options.rows ?? 24,
      cwd: options.cwd,
      env: childEnv(options.env),
    });
  } catch (error) {
    throw new StepError(`could not start ${command}: ${(error as Error).message}`);
  }
  const { exited, settle } = exitedPromise();
  let ended = false;
  const terminalSide = holdTerminalSide(term);
  // With the terminal held open (above), node-pty ends it 200 ms after its process exited and
  // drops what was not read by then (DESTROY_SOCKET_TIMEOUT_MS in its unixTerminal.ts): output
  // held back (paused) longer was lost. While reading is paused the process is watched, and once
  // it is gone the rest (what the terminal's buffers hold) is read at once, before node-pty ends it.
  let exitWatch: NodeJS.Timeout | null = null;
  let processGone = false;
  const stopWatching = () => {
    if (exitWatch) clearInterval(exitWatch);
    exitWatch = null;
  };
  const pause = () => {
    term.pause();
    exitWatch ??= setInterval(() => {
      if (isRunning(term.pid)) return;
      processGone = true;
      stopWatching();
      term.resume();
    }, EXIT_WATCH_MS);
  };
  const session = new Duplex({
    decodeStrings: false,
    write(chunk: Buffer | string, _encoding, callback) {
      if (!ended) term.write(typeof chunk === "string" ? chunk : chunk.toString("utf8"));
      callback();
    },
    final(callback) {
      // A terminal has no half-close: end of input is Ctrl-D at the start of a line.
      if (!ended) term.write("\x04");
      callback();
    },
    read() {
      stopWatching();
      term.resume();
    },
    destroy(error, callback) {
      if (!ended) {
        try {
          // SIGHUP, as a terminal that goes away sends to its session.
          term.kill("SIGHUP");
        } catch {
          // Already gone.
        }
      }
      callback(error);
    },
  }) as ExecSession;
  term.onData((data) => {
    if (ended) return;
    if (!session.push(data) && !processGone) pause();
  });
  term.onExit(({ exitCode, signal }) => {
    ended = true;
    stopWatching();
    if (terminalSide !== null) fs.close(terminalSide, () => undefined);
    settle(signal ? null : exitCode);
    session.push(null);
  });
  Object.defineProperty(session, "exited", { value: exited });
  session.resize = async ({ cols, rows }) => {
    if (!ended) term.resize(cols, rows);
  };
  return session;
}

/** How often a paused terminal's process is looked at: well within node-pty's 200 ms. */
const EXIT_WATCH_MS = 50;

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Opens the process's side of the terminal in the engine too, until the process ended. Once the
 * last process holding that side closed it, Linux fails the reads of the engine's side (EIO)
 * with output still unread: a few kilobytes beyond what the line discipline held were lost when
 * reading resumed after the exit of a process whose output was held back, and now and then the
 * tail of a short-lived command's (microsoft/node-pty#726). Held open here, no read fails early;
 * node-pty ends the terminal 200 ms after its process exited instead. Null when it cannot be
 * opened (the terminal then ends as node-pty alone ends it).
 */
function holdTerminalSide(term: pty.IPty): number | null {
  const path = (term as pty.IPty & { ptsName?: string }).ptsName;
  if (!path) return null;
  try {
    return fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_NOCTTY);
  } catch {
    return null;
  }
}

function pipeSession(command: string, args: string[], options: ExecOptions & { cwd: string; env: Record<string, string> }): ExecSession {
  const child = spawn(command, args, { cwd: options.cwd, env: childEnv(options.env), stdio: ["pipe", "pipe", "pipe"], detached: true });
  const { exited, settle } = exitedPromise();
  let open = 2;
  let eof = false;
  const end = () => {
    if (eof) return;
    eof = true;
    session.push(null);
  };
  const session = new Duplex({
    write(chunk: Buffer, _encoding, callback) {
      if (child.stdin.writable) child.stdin.write(chunk, () => callback());
      else callback();
    },
    final(callback) {
      child.stdin.end();
      callback();
    },
    read() {
      child.stdout.resume();
      child.stderr.resume();
    },
    destroy(error, callback) {
      if (child.exitCode === null && child.signalCode === null && child.pid) {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
      callback(error);
    },
  }) as ExecSession;
  // A command that does not read its input must not fail the session with EPIPE.
  child.stdin.on("error", () => undefined);
  for (const stream of [child.stdout, child.stderr]) {
    stream.on("data", (chunk: Buffer) => {
      if (!eof && !session.push(chunk)) stream.pause();
    });
    stream.on("end", () => {
      if (--open === 0) end();
    });
  }
  child.once("error", (error) => {
    if (!eof) session.push(`${command}: ${error.message}\n`);
    settle(127);
    end();
  });
  child.once("close", (code) => settle(code));
  Object.defineProperty(session, "exited", { value: exited });
  session.resize = async () => undefined;
  return session;
}
