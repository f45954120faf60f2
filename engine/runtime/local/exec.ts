import { spawn } from "node:child_process";
import fs from "node:fs";
import { Duplex } from "node:stream";
import * as pty from "node-pty";
import type { ExecOptions, ExecSession } from "../runtime";
import { StepError } from "../runtime";
import { signalGroup } from "../shared/commands";
import { engineBoundTrackingId, killTracked, TRACKING_VAR } from "../shared/leftover-processes";
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
  // What the session leaves running when it ends is killed then (those the terminal's hangup
  // spared: nohup, setsid), and whatever it runs when the engine dies (leftover-processes.ts).
  const trackingId = engineBoundTrackingId();
  let term: pty.IPty;
  try {
    term = pty.spawn(command, args, {
      name: options.env.TERM ?? "xterm-256color",
      cols: options.cols ?? 80,
      rows: options.rows ?? 24,
      cwd: options.cwd,
      env: childEnv({ ...options.env, [TRACKING_VAR]: trackingId }),
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
    session.push(null);
    void killTracked(trackingId).then(() => settle(signal ? null : exitCode));
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

/**
 * How long a pipe session's output is still read once its process exited, before what it left
 * running is killed: what the process wrote is in the pipes already, while a leftover (`server &`,
 * a setsid daemon) holds them open for as long as it lives, and the session must end with its
 * process, as a terminal's does. Short: someone waits at a prompt (a build reads a second more).
 */
const EXEC_OUTPUT_GRACE_MS = 250;

/**
 * Once the leftovers were killed, the pipes close as soon as their last output was read; the
 * session waits this long more for that while its reader keeps up (a reader holding the output
 * back waits as long as it likes), for a holder found by no tracking id (it cleared its environment).
 */
const EXEC_DRAIN_MS = 1_000;

/**
 * A session with plain pipes (stdout and stderr merged), in a process group of its own. It ends
 * when its process exits, as a terminal session does: its output is read for
 * EXEC_OUTPUT_GRACE_MS more, then its group and what carries its tracking id are killed (a
 * background job or a daemon it started: leftover-processes.ts) and the rest is read. The exit
 * code is its process's, null when a signal ended it.
 */
function pipeSession(command: string, args: string[], options: ExecOptions & { cwd: string; env: Record<string, string> }): ExecSession {
  const trackingId = engineBoundTrackingId();
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: childEnv({ ...options.env, [TRACKING_VAR]: trackingId }),
    stdio: ["pipe", "pipe", "pipe"],
    detached: true,
  });
  const { exited, settle } = exitedPromise();
  let exitCode: number | null = null;
  let processEnded = false;
  let open = 2;
  let eof = false;
  let readingPaused = false;
  let draining = false;
  let graceTimer: NodeJS.Timeout | undefined;
  let drainTimer: NodeJS.Timeout | undefined;
  let outputEnded!: () => void;
  const outputDone = new Promise<void>((resolve) => (outputEnded = resolve));
  const finishOutput = () => {
    if (eof) return;
    eof = true;
    clearTimeout(drainTimer);
    // No more output is read past this point: stop waiting for what still holds the pipes.
    child.stdout.destroy();
    child.stderr.destroy();
    if (!session.destroyed) session.push(null);
    outputEnded();
  };
  const armDrain = () => {
    clearTimeout(drainTimer);
    if (draining && !readingPaused && !eof) drainTimer = setTimeout(finishOutput, EXEC_DRAIN_MS);
  };
  let stopping: Promise<void> | null = null;
  const stopLeftovers = () =>
    (stopping ??= (async () => {
      clearTimeout(graceTimer);
      if (child.pid !== undefined) signalGroup(child.pid, "SIGKILL");
      await killTracked(trackingId);
      draining = true;
      armDrain();
      await outputDone;
      settle(exitCode);
    })());
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
      readingPaused = false;
      armDrain();
      child.stdout.resume();
      child.stderr.resume();
    },
    destroy(error, callback) {
      // Nobody reads any more: the session ends once its process and leftovers are killed.
      finishOutput();
      if (!processEnded && child.pid !== undefined) signalGroup(child.pid, "SIGKILL");
      else void stopLeftovers();
      callback(error);
    },
  }) as ExecSession;
  // A command that does not read its input must not fail the session with EPIPE.
  child.stdin.on("error", () => undefined);
  for (const stream of [child.stdout, child.stderr]) {
    stream.on("data", (chunk: Buffer) => {
      if (eof || session.push(chunk)) return;
      stream.pause();
      readingPaused = true;
      clearTimeout(drainTimer);
    });
    stream.on("end", () => {
      if (--open > 0) return;
      finishOutput();
      if (processEnded) void stopLeftovers();
    });
  }
  child.once("error", (error) => {
    if (!eof) session.push(`${command}: ${error.message}\n`);
    processEnded = true;
    exitCode = 127;
    finishOutput();
    void stopLeftovers();
  });
  child.once("exit", (code, signal) => {
    processEnded = true;
    exitCode = signal ? null : code;
    if (eof) void stopLeftovers();
    else graceTimer = setTimeout(() => void stopLeftovers(), EXEC_OUTPUT_GRACE_MS);
  });
  Object.defineProperty(session, "exited", { value: exited });
  session.resize = async () => undefined;
  return session;
}
