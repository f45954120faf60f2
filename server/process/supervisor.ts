import { spawn, type ChildProcess } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import type { Writable } from "node:stream";
import { createLinePrefixer, createPaint } from "./prefix-lines";

/**
 * Runs the processes of `npm start` as children: their output shares the terminal, one
 * labelled line at a time; they stop in the reverse order they started (engine, then worker,
 * then web, then PostgreSQL), each given time to finish before it is killed; and when one dies
 * on its own, the others are stopped too, since a half-running platform is worse than none.
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
};

export type ChildExit = {
  name: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all (ENOENT, EACCES). */
  error?: Error;
};

export type SupervisedChild = {
  readonly name: string;
  readonly process: ChildProcess;
  /** Resolves once the child has exited and its output has been written out. */
  readonly exited: Promise<ChildExit>;
  readonly running: boolean;
};

export type SupervisorOptions = {
  stdout?: Writable;
  stderr?: Writable;
  colors?: boolean;
  /** Labels are padded to this width so the output lines up. */
  nameWidth?: number;
  stopTimeoutMs?: number;
  /** Called when a started child exits while the supervisor is not stopping, before it stops the rest. */
  onUnexpectedExit?: (exit: ChildExit) => void;
};

export type StopOutcome = {
  /** The child whose exit caused the stop, or null when stop() was asked for. */
  unexpectedExit: ChildExit | null;
};

export type Supervisor = {
  /** Starts a long-running child; its exit before stop() stops everything. */
  start(spec: ChildSpec): SupervisedChild;
  /** Runs a child to completion (a build); stop() still ends it if it is running. */
  run(spec: ChildSpec): Promise<ChildExit>;
  /** Stops every running child, most recently started first. Idempotent. */
  stop(): Promise<StopOutcome>;
  /** Sends every running child its force signal now, synchronously (a second Ctrl-C, process exit). */
  kill(): void;
  /** Writes a line under a label, in the children's format. */
  print(name: string, message: string): void;
  readonly stopping: boolean;
  /** Resolves when a stop, asked for or caused by an unexpected exit, has finished. */
  readonly stopped: Promise<StopOutcome>;
};

type Entry = SupervisedChild & { spec: ChildSpec; expectExit: boolean; label: string };

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

  function launch(spec: ChildSpec, expectExit: boolean): Entry {
    if (stopping) throw new Error(`Not starting ${spec.name}: the supervisor is stopping`);
    const label = labelFor(spec.name);
    const child = spawn(spec.command, [...spec.args], {
      cwd: spec.cwd,
      env: spec.env ?? process.env,
      stdio: spec.ipc ? ["ignore", "pipe", "pipe", "ipc"] : ["ignore", "pipe", "pipe"],
      detached: true,
    });
    const out = createLinePrefixer(label, (text) => stdout.write(text));
    const err = createLinePrefixer(label, (text) => stderr.write(text));
    child.stdout?.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr?.on("data", (chunk: Buffer) => err.push(chunk));

    let running = true;
    const exited = new Promise<ChildExit>((resolve) => {
      const finish = (exit: ChildExit) => {
        running = false;
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

    const entry: Entry = {
      name: spec.name,
      process: child,
      exited,
      get running() {
        return running;
      },
      spec,
      expectExit,
      label,
    };
    entries.push(entry);
    void exited.then((exit) => {
      if (stopping || entry.expectExit) return;
      unexpectedExit = exit;
      print(label, paint.red(`exited unexpectedly (${describeExit(exit)}); stopping everything`));
      options.onUnexpectedExit?.(exit);
      void stop();
    });
    return entry;
  }

  async function stopEntry(entry: Entry): Promise<void> {
    if (!entry.running) return;
    const timeoutMs = entry.spec.stopTimeoutMs ?? defaultStopTimeoutMs;
    signal(entry, "SIGTERM");
    if (await exitsWithin(entry, timeoutMs)) return print(entry.label, paint.dim("stopped"));
    const force = entry.spec.forceSignal ?? "SIGKILL";
    print(entry.label, paint.red(`did not stop within ${timeoutMs / 1000} s; sending ${force}`));
    signal(entry, force);
    if (!(await exitsWithin(entry, timeoutMs))) print(entry.label, paint.red(`still running (pid ${entry.process.pid}); leaving it`));
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
    start: (spec) => launch(spec, false),
    run: (spec) => launch(spec, true).exited,
    stop,
    kill() {
      stopping = true;
      for (const entry of entries) if (entry.running) signal(entry, entry.spec.forceSignal ?? "SIGKILL");
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
    entry.process.kill(name);
  } catch (error) {
    // ESRCH: it exited between the check and the signal, which is what we wanted.
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

async function exitsWithin(entry: Entry, timeoutMs: number): Promise<boolean> {
  const timeout = new AbortController();
  const result = await Promise.race([entry.exited.then(() => true), sleep(timeoutMs, false, { signal: timeout.signal }).catch(() => false)]);
  timeout.abort();
  return result;
}
