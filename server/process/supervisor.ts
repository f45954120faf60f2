import { spawn, type ChildProcess } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import type { Writable } from "node:stream";
import { createBackoff, type Backoff } from "../../engine/protocol/backoff";
import { createLinePrefixer, createPaint } from "./prefix-lines";

/**
 * Runs the processes of `npm start` as children: their output shares the terminal, one
 * labelled line at a time; they stop in the reverse order they started (engine, then worker,
 * then web, then PostgreSQL), each given time to finish before it is killed.
 *
 * A child that dies on its own is started again after a pause that doubles with each crash
 * (1 s, 2 s, 4 s… up to 30 s), and the others keep running: a crashed engine must not take
 * the database down with it, and apps keep serving meanwhile. A child that ran for a while
 * before crashing starts the pauses over. Only a crash loop (eight exits in a row of processes
 * that never got started: about a minute and a half of trying) or a child that cannot be
 * spawned at all makes the supervisor give up and stop everything, saying why: a platform
 * restarting forever hides the error that stops it. A process got started when it said it was
 * ready (`readyWhen`) or, for a child that cannot say so, when it ran for `healthyAfterMs`. The
 * exits of started processes never add up to a loop: a healthy worker killed from outside, or
 * one that exits whenever its database restarts, is restarted as often as that happens.
 *
 * Children run in their own process group (`detached`): Ctrl-C in a terminal signals the whole
 * foreground group at once, which would stop PostgreSQL under the web process and skip the
 * order. Only the supervisor receives it, and it decides what stops when. Signals go to the
 * child's pid only, not its group: processes the engine started must outlive it.
 */
export type ChildSpec = {
  name: string;
  command: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Opens an IPC channel: `child.process.send()` and `child.process.on("message")`. */
  ipc?: boolean;
  /** How long the child has to exit after SIGTERM before it gets `forceSignal`. */
  stopTimeoutMs?: number;
  /** Sent when the child does not stop in time, and on a forced stop. Default SIGKILL. */
  forceSignal?: NodeJS.Signals;
  /** How a long-running child is restarted after a crash; false: its exit stops everything. */
  restart?: RestartPolicy | false;
  /** What is said once stop() has stopped the child; "stopped" by default. */
  stoppedNote?: string;
  /** Called with each new process of the child (its first start and every restart), before its output is read. */
  onSpawn?: (process: ChildProcess) => void;
  /** Whether an IPC message from the child says it has started (readiness.ts): its exit then is a crash, not a failed start. */
  readyWhen?: (message: unknown) => boolean;
};

export type RestartPolicy = {
  /** The first pause before a restart; it doubles with each crash in a row. */
  baseMs?: number;
  maxMs?: number;
  /** A process that ran this long had recovered: its crash starts the pauses over (and it had started, ready or not). */
  healthyAfterMs?: number;
  /** This many exits in a row of processes that never got started (not ready, not healthyAfterMs old) is a crash loop: the supervisor gives up. */
  maxFailedStarts?: number;
};

// Eight failed starts in a row span about 90 s of pauses (1 + 2 + 4 + 8 + 16 + 30 + 30 s): enough
// for a dependency to come back (a web process that cannot boot while PostgreSQL restarts exits).
const DEFAULT_RESTART: Required<RestartPolicy> = { baseMs: 1_000, maxMs: 30_000, healthyAfterMs: 30_000, maxFailedStarts: 8 };

export type ChildExit = {
  name: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all (ENOENT, EACCES). */
  error?: Error;
};

export type SupervisedChild = {
  readonly name: string;
  /** The child's current process (a restart replaces it). */
  readonly process: ChildProcess;
  /** Resolves once the child is over for good (stopped, or given up on) and its output has been written out. */
  readonly exited: Promise<ChildExit>;
  /** Whether its current process runs (false while a restart waits). */
  readonly running: boolean;
  /** How often it was restarted after a crash. */
  readonly restarts: number;
};

export type SupervisorOptions = {
  stdout?: Writable;
  stderr?: Writable;
  colors?: boolean;
  /** Labels are padded to this width so the output lines up. */
  nameWidth?: number;
  stopTimeoutMs?: number;
  /** Called when the supervisor gives up on a child (a crash loop, a child it cannot spawn), before it stops the rest. */
  onUnexpectedExit?: (exit: ChildExit) => void;
};

export type StopOutcome = {
  /** The child whose exits made the supervisor give up, or null when stop() was asked for. */
  unexpectedExit: ChildExit | null;
};

export type Supervisor = {
  /** Starts a long-running child, restarted after a crash as its spec says. */
  start(spec: ChildSpec): SupervisedChild;
  /** Runs a child to completion (a build), never restarted; stop() still ends it if it is running. */
  run(spec: ChildSpec): Promise<ChildExit>;
  /** Stops every running child, most recently started first. Idempotent. */
  stop(): Promise<StopOutcome>;
  /** Sends every running child its force signal now, synchronously (a second Ctrl-C, process exit). */
  kill(): void;
  /** Writes a line under a label, in the children's format. */
  print(name: string, message: string): void;
  readonly stopping: boolean;
  /** Resolves when a stop, asked for or caused by giving up on a child, has finished. */
  readonly stopped: Promise<StopOutcome>;
};

type Entry = SupervisedChild & {
  spec: ChildSpec;
  label: string;
  longRunning: boolean;
  /** Null for a one-shot run, and for a child whose exit stops everything. */
  policy: Required<RestartPolicy> | null;
  current: ChildProcess;
  currentExit: Promise<ChildExit>;
  isRunning: boolean;
  restartCount: number;
  failedStartsInARow: number;
  backoff: Backoff;
  restartTimer: NodeJS.Timeout | null;
  lastExit: ChildExit | null;
  finish: (exit: ChildExit) => void;
  finished: boolean;
};

// After `exit`, stdio normally closes at once; a grandchild that inherited the pipes could hold
// them open forever, so stop waiting for `close` after this long.
const OUTPUT_DRAIN_MS = 500;

export function createSupervisor(options: SupervisorOptions = {}): Supervisor {
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const paint = createPaint(options.colors ?? false);
  const nameWidth = options.nameWidth ?? 6;
  const defaultStopTimeoutMs = options.stopTimeoutMs ?? 10_000;
  const entries: Entry[] = [];
  const labels = new Map<string, string>();
  let stopping = false;
  let stopPromise: Promise<StopOutcome> | null = null;
  let unexpectedExit: ChildExit | null = null;
  let resolveStopped: (outcome: StopOutcome) => void = () => {};
  const stopped = new Promise<StopOutcome>((resolve) => {
    resolveStopped = resolve;
  });

  // One colour per name, in order of first appearance.
  const labelFor = (name: string) => {
    const label = labels.get(name) ?? paint.label(name, labels.size, Math.max(nameWidth, name.length));
    labels.set(name, label);
    return label;
  };
  const print = (label: string, message: string): void => {
    stdout.write(`${label}${message}\n`);
  };

  /** Starts one process of the entry, and resolves with its exit once its output is written out. */
  function spawnProcess(entry: Entry): void {
    const { spec, label } = entry;
    const child = spawn(spec.command, [...spec.args], {
      cwd: spec.cwd,
      env: spec.env ?? process.env,
      stdio: spec.ipc ? ["ignore", "pipe", "pipe", "ipc"] : ["ignore", "pipe", "pipe"],
      detached: true,
    });
    const startedAt = Date.now();
    let ready = false;
    entry.current = child;
    entry.isRunning = true;
    if (spec.readyWhen) {
      const readyWhen = spec.readyWhen;
      child.on("message", (message) => {
        ready ||= readyWhen(message);
      });
    }
    spec.onSpawn?.(child);
    const out = createLinePrefixer(label, (text) => stdout.write(text));
    const err = createLinePrefixer(label, (text) => stderr.write(text));
    child.stdout?.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr?.on("data", (chunk: Buffer) => err.push(chunk));

    entry.currentExit = new Promise<ChildExit>((resolve) => {
      const finish = (exit: ChildExit) => {
        entry.isRunning = false;
        out.flush();
        err.flush();
        resolve(exit);
      };
      child.once("error", (error) => {
        // Spawning failed: there will be no `exit` event.
        if (child.pid === undefined) finish({ name: spec.name, code: null, signal: null, error });
      });
      child.once("exit", (code, signal) => {
        const exit = { name: spec.name, code, signal };
        const drained = setTimeout(() => finish(exit), OUTPUT_DRAIN_MS);
        child.once("close", () => {
          clearTimeout(drained);
          finish(exit);
        });
      });
    });
    void entry.currentExit.then((exit) => afterExit(entry, exit, { uptimeMs: Date.now() - startedAt, ready }));
  }

  function afterExit(entry: Entry, exit: ChildExit, run: { uptimeMs: number; ready: boolean }): void {
    entry.lastExit = exit;
    if (stopping || !entry.longRunning) return entry.finish(exit);
    if (exit.error) return giveUp(entry, exit, `could not be started (${describeExit(exit)})`);
    const policy = entry.policy;
    if (!policy) return giveUp(entry, exit, `exited unexpectedly (${describeExit(exit)})`);
    // Readiness says the process started, not that it is stable: only a long run resets the pauses,
    // so a process that crashes right after it is ready is not restarted in a tight loop.
    const ranLong = run.uptimeMs >= policy.healthyAfterMs;
    if (ranLong) entry.backoff.reset();
    entry.failedStartsInARow = run.ready || ranLong ? 0 : entry.failedStartsInARow + 1;
    if (entry.failedStartsInARow >= policy.maxFailedStarts) {
      const notStarted = entry.spec.readyWhen ? "before it was ready" : `within ${Math.round(policy.healthyAfterMs / 1000)} s of starting`;
      return giveUp(entry, exit, `exited ${entry.failedStartsInARow} times in a row, each ${notStarted} (last: ${describeExit(exit)})`);
    }
    const delayMs = entry.backoff.next();
    print(entry.label, paint.red(`exited unexpectedly (${describeExit(exit)}); restarting in ${(delayMs / 1000).toFixed(1)} s`));
    entry.restartTimer = setTimeout(() => {
      entry.restartTimer = null;
      if (stopping) return entry.finish(exit);
      entry.restartCount += 1;
      print(entry.label, paint.dim(`restarting (restart ${entry.restartCount})`));
      spawnProcess(entry);
    }, delayMs);
  }

  function giveUp(entry: Entry, exit: ChildExit, why: string): void {
    unexpectedExit = exit;
    print(entry.label, paint.red(`${why}; stopping everything`));
    options.onUnexpectedExit?.(exit);
    entry.finish(exit);
    void stop();
  }

  function launch(spec: ChildSpec, longRunning: boolean): Entry {
    if (stopping) throw new Error(`Not starting ${spec.name}: the supervisor is stopping`);
    let finish: (exit: ChildExit) => void = () => {};
    const exited = new Promise<ChildExit>((resolve) => {
      finish = resolve;
    });
    const restart = longRunning && spec.restart !== false ? { ...DEFAULT_RESTART, ...spec.restart } : null;
    const entry = {
      name: spec.name,
      exited,
      spec,
      label: labelFor(spec.name),
      longRunning,
      policy: restart,
      isRunning: false,
      restartCount: 0,
      failedStartsInARow: 0,
      backoff: createBackoff({ baseMs: restart?.baseMs ?? DEFAULT_RESTART.baseMs, maxMs: restart?.maxMs ?? DEFAULT_RESTART.maxMs }),
      restartTimer: null,
      lastExit: null,
      finished: false,
      finish(exit: ChildExit) {
        if (entry.finished) return;
        entry.finished = true;
        finish(exit);
      },
      get process() {
        return entry.current;
      },
      get running() {
        return entry.isRunning;
      },
      get restarts() {
        return entry.restartCount;
      },
    } as Entry;
    entries.push(entry);
    spawnProcess(entry);
    return entry;
  }

  async function stopEntry(entry: Entry): Promise<void> {
    if (entry.restartTimer) {
      clearTimeout(entry.restartTimer);
      entry.restartTimer = null;
    }
    if (!entry.isRunning) {
      if (entry.lastExit) entry.finish(entry.lastExit);
      return;
    }
    const timeoutMs = entry.spec.stopTimeoutMs ?? defaultStopTimeoutMs;
    signal(entry, "SIGTERM");
    if (await exitsWithin(entry, timeoutMs)) return print(entry.label, paint.dim(entry.spec.stoppedNote ?? "stopped"));
    const force = entry.spec.forceSignal ?? "SIGKILL";
    print(entry.label, paint.red(`did not stop within ${timeoutMs / 1000} s; sending ${force}`));
    signal(entry, force);
    if (!(await exitsWithin(entry, timeoutMs))) print(entry.label, paint.red(`still running (pid ${entry.current.pid}); leaving it`));
  }

  function stop(): Promise<StopOutcome> {
    if (stopPromise) return stopPromise;
    stopping = true;
    stopPromise = (async () => {
      for (const entry of [...entries].reverse()) await stopEntry(entry);
      const outcome = { unexpectedExit };
      resolveStopped(outcome);
      return outcome;
    })();
    return stopPromise;
  }

  return {
    start: (spec) => launch(spec, true),
    run: (spec) => launch(spec, false).exited,
    stop,
    kill() {
      stopping = true;
      for (const entry of entries) {
        if (entry.restartTimer) clearTimeout(entry.restartTimer);
        if (entry.isRunning) signal(entry, entry.spec.forceSignal ?? "SIGKILL");
      }
    },
    print: (name, message) => print(labelFor(name), message),
    get stopping() {
      return stopping;
    },
    stopped,
  };
}

export function describeExit(exit: ChildExit): string {
  if (exit.error) return exit.error.message;
  if (exit.signal) return `signal ${exit.signal}`;
  return `code ${exit.code}`;
}

function signal(entry: Entry, name: NodeJS.Signals): void {
  try {
    entry.current.kill(name);
  } catch (error) {
    // ESRCH: it exited between the check and the signal, which is what we wanted.
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

async function exitsWithin(entry: Entry, timeoutMs: number): Promise<boolean> {
  const timeout = new AbortController();
  const result = await Promise.race([entry.currentExit.then(() => true), sleep(timeoutMs, false, { signal: timeout.signal }).catch(() => false)]);
  timeout.abort();
  return result;
}
