import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import getPort from "get-port";
import type { ReleaseStore } from "../release-store";
import { type ServiceLog, StepError } from "../runtime";
import type { ResolvedVariable } from "../../protocol";
import { loadingMasker, type Masker, withheldLine } from "../secret-mask";
import { readJson, writeJsonAtomic } from "../shared/files";
import { childEnv } from "../shared/processes-env";
import { type CgroupHost, CGROUP_PROCS_VAR, createReleaseCgroup, launchArgv, removeCgroup } from "./cgroups";
import { type LaunchSpec, launchSpec, type Layout, type LocalRelease, type ReleaseProcess, type ServiceState } from "./layout";
import { LogTailer } from "./log-tailer";
import { ProcessRecords } from "./process-records";
import type { ServiceSandboxes } from "./sandbox/service-sandboxes";
import { isSameProcessAlive, portIsFree, processStartTime, stopGroup } from "./processes";

/** How long a dead child's exit event is waited for: it follows the kernel's word by milliseconds. */
const EXIT_EVENT_WAIT_MS = 2_000;
/** How long what a crashed release left running in its group gets to stop before it is killed. */
const SURVIVOR_GRACE_MS = 1_000;

export type LocalStore = ReleaseStore<ReleaseProcess, ServiceState, LocalRelease>;

type Fd = "stdout" | "stderr";
export const FDS: readonly Fd[] = ["stdout", "stderr"];

/**
 * A release's output files, one per stream so that each line keeps the stream it was written to
 * (the stderr filter of the logs). Files rather than pipes: the app keeps writing them while the
 * engine is down, and the next engine reads each on from its own saved offset.
 */
export const RUNTIME_LOG_FILES: Record<Fd, string> = { stdout: "runtime.log", stderr: "runtime.stderr.log" };

/**
 * Where a stream's offset is saved in ServiceState.logOffsets. stdout keeps the bare release id,
 * as states written before stderr had a file of its own saved it (that file held both streams).
 */
export function offsetKey(releaseId: string, fd: Fd): string {
  return fd === "stdout" ? releaseId : `${releaseId}:stderr`;
}

/** The releases whose offsets a service's state holds. */
export function releasesWithOffsets(logOffsets: Record<string, number>): string[] {
  return [...new Set(Object.keys(logOffsets).map((key) => key.split(":")[0]!))];
}

/**
 * A line's name in the control plane (log_lines.source): `<release>:<offset>` for stdout, as
 * before, `<release>:stderr:<offset>` for stderr; both start with the release id, which the
 * release filter matches.
 */
function lineSource(releaseId: string, fd: Fd, offset: number): string {
  return fd === "stdout" ? `${releaseId}:${offset}` : `${releaseId}:stderr:${offset}`;
}

/**
 * The processes of the local runtime's releases: started detached with their output appended to
 * the release's log files (so apps outlive the engine), followed by offset, stopped by group.
 */
export class ReleaseProcesses {
  /** Our own children: their exit reason, for messages (adopted processes are polled instead). */
  private readonly exits = new Map<number, string>();
  private readonly children = new Map<number, ChildProcess>();
  /** Per followed release, a tailer per stream. */
  private readonly tailers = new Map<string, LogTailer[]>();
  /** Per followed release, what its lines are masked with: the secrets of its launch file. */
  private readonly masks = new Map<string, Masker>();
  private readonly records: ProcessRecords;
  /**
   * Per release followed or paused, whether its log was finished (read to the end, offsets
   * forgotten): lines of it the control plane stores later must not bring an offset back. An
   * entry goes when its release is finished, so the map holds live releases only.
   */
  private readonly follows = new Map<string, { finished: boolean }>();
  private readonly persistQueued = new Set<string>();

  constructor(
    private readonly options: {
      paths: Layout;
      store: LocalStore;
      cgroups: CgroupHost;
      sandboxes: ServiceSandboxes;
      serviceLog: ServiceLog;
      stopGraceMs?: number;
    },
  ) {
    this.records = new ProcessRecords(options.paths);
  }

  /** Starts a release's process on its port (a free one unless the launch names it), inside its control groups. */
  async spawn(serviceId: string, releaseId: string, launch: LaunchSpec, commit: string | undefined, preferredPort?: number): Promise<ReleaseProcess> {
    // A database listens where applications were told; anything else takes a free port.
    const port = launch.port ?? (await getPort({ host: "127.0.0.1", ...(preferredPort ? { port: preferredPort } : {}) }));
    if (launch.port !== undefined && !(await portIsFree(launch.port))) {
      throw new StepError(`port ${launch.port} is taken by another process on the engine's host`);
    }
    const releaseDir = this.options.paths.releaseDir(serviceId, releaseId);
    if (!launch.argv[0]) throw new Error("empty start command");
    // Before the log is opened: a release that must not run here leaves no file behind.
    const sandboxed = this.options.sandboxes.wrap(launch.sandbox, launch.argv, { cwd: launch.cwd, outlivesEngine: true });
    // The app's own output, secrets included: the engine's to read (masked as it ships), no one else's.
    const out = fs.openSync(path.join(releaseDir, RUNTIME_LOG_FILES.stdout), "a", 0o600);
    const err = fs.openSync(path.join(releaseDir, RUNTIME_LOG_FILES.stderr), "a", 0o600);
    // Limits: the process enters its control groups before it execs the app (cgroups.ts).
    let cgroup: ReturnType<typeof createReleaseCgroup> = null;
    try {
      cgroup = createReleaseCgroup(this.options.cgroups, `${releaseId}-${Date.now().toString(36)}`, launch.limits);
    } catch (error) {
      this.options.serviceLog(serviceId, releaseId, `[slipway] could not apply the resource limits: ${(error as Error).message}`);
    }
    // The launcher enters the control groups as the engine, then drops into the sandbox (cgroups.ts, sandbox/sandbox.ts).
    const [command, ...args] = cgroup ? launchArgv(sandboxed) : sandboxed;
    const env = { ...launch.env, PORT: String(port), ...(cgroup ? { [CGROUP_PROCS_VAR]: cgroup.procs.join(":") } : {}) };
    // Detached with file descriptors (not pipes): the app keeps running and logging when the engine dies.
    const child = spawn(command!, args, {
      cwd: launch.cwd,
      env: childEnv(env),
      detached: true,
      stdio: ["ignore", out, err],
      ...(launch.user && !launch.sandbox ? { uid: launch.user.uid, gid: launch.user.gid } : {}),
    });
    fs.closeSync(out);
    fs.closeSync(err);
    // Recorded before the first await: an engine killed from here on leaves a record the next one finds (sweep()).
    const startTime = child.pid === undefined ? null : processStartTime(child.pid);
    const proc: ReleaseProcess | null =
      child.pid === undefined || startTime === null
        ? null
        : {
            releaseId,
            commit,
            port,
            pid: child.pid,
            startTime,
            startedAt: new Date().toISOString(),
            ...(cgroup ? { cgroups: cgroup.dirs } : {}),
            ...(launch.stopSignal ? { stopSignal: launch.stopSignal } : {}),
          };
    if (proc) this.records.write(serviceId, proc);
    const pid = await new Promise<number>((resolve, reject) => {
      child.once("spawn", () => resolve(child.pid ?? -1));
      child.once("error", (error) => reject(new StepError(`could not start ${command}: ${error.message}`)));
    });
    child.unref();
    // A pid the kernel gave out again: what an earlier process with it told is not this one's.
    this.exits.delete(pid);
    this.children.set(pid, child);
    child.once("exit", (code, signal) => {
      this.exits.set(pid, signal ? `was killed by ${signal}` : `exited with code ${String(code)}`);
      this.children.delete(pid);
    });
    if (!proc) {
      if (cgroup) removeCgroup(cgroup.dirs);
      throw new StepError(`${launch.argv[0]} exited immediately`);
    }
    this.tail(serviceId, releaseId);
    return proc;
  }

  /** Stops the release's process group; a release that no longer serves also has its log read to the end. */
  async stop(serviceId: string, proc: ReleaseProcess): Promise<void> {
    await stopGroup(proc.pid, proc.startTime, this.options.stopGraceMs ?? 10_000, proc.stopSignal);
    this.exits.delete(proc.pid);
    if (proc.cgroups) removeCgroup(proc.cgroups);
    this.records.remove(serviceId, proc);
    if (this.options.store.get(serviceId)?.current?.releaseId !== proc.releaseId) await this.finishTail(serviceId, proc.releaseId);
  }

  /**
   * Forgets a process that ended by itself (a crash): what it started that outlived it in its
   * group is stopped (a worker of `sh -c "worker & server"` would pile up with every restart,
   * holding memory and maybe the port), then its record, control groups and exit reason go.
   */
  async forget(serviceId: string, proc: ReleaseProcess): Promise<void> {
    await stopGroup(proc.pid, proc.startTime, SURVIVOR_GRACE_MS, proc.stopSignal);
    if (proc.cgroups) removeCgroup(proc.cgroups);
    this.records.remove(serviceId, proc);
    // Its pid may come back as another process, whose crash must not be told with this one's reason.
    if (!this.children.has(proc.pid)) this.exits.delete(proc.pid);
  }

  /**
   * Run once per service when an engine starts, before supervision: every recorded process that
   * the service's state does not track as live is stopped (an engine killed between starting a
   * release and switching to it left it running), except one of the live release itself found
   * running while the tracked one is dead (a crash restart the killed engine had not persisted
   * yet), which is adopted. The tracked process itself is stopped too when the state says it no
   * longer runs: "sleeping" and "stopped" are saved before the release is stopped, so an engine
   * killed in between left it running, untracked, while the router takes the service for asleep
   * (a wake would start a second instance beside it) or stopped. Returns the releases whose
   * strays were stopped.
   */
  async sweep(serviceId: string): Promise<Set<string>> {
    const { store, serviceLog } = this.options;
    const stopped = new Set<string>();
    for (const proc of this.records.list(serviceId)) {
      const state = store.get(serviceId);
      const current = state?.current;
      const tracked = !!current && proc.pid === current.pid && proc.startTime === current.startTime;
      const halted = state?.status === "sleeping" || state?.status === "stopped";
      if (tracked && !halted) continue;
      if (!this.isAlive(proc)) {
        // What it started may live on in its group (an app under `npm start` that outlived npm): forget stops that too.
        await this.forget(serviceId, proc);
        continue;
      }
      if (tracked) {
        await this.stop(serviceId, proc);
        const why = state?.status === "sleeping" ? "while it put the service to sleep: the service is asleep" : "while it stopped the service";
        serviceLog(serviceId, proc.releaseId, `[slipway] stopped pid ${proc.pid} of release ${proc.releaseId}, which the previous engine left running ${why}`);
        continue;
      }
      if (state && current && !halted && proc.releaseId === current.releaseId && !this.isAlive(current)) {
        await this.forget(serviceId, current);
        state.current = proc;
        await store.persist(serviceId);
        serviceLog(serviceId, proc.releaseId, `[slipway] adopted pid ${proc.pid} of release ${proc.releaseId}, started before the engine stopped`);
        continue;
      }
      await this.stop(serviceId, proc);
      stopped.add(proc.releaseId);
      serviceLog(serviceId, proc.releaseId, `[slipway] stopped pid ${proc.pid} of release ${proc.releaseId}: the engine stopped before the release went live`);
    }
    return stopped;
  }

  isAlive(proc: ReleaseProcess): boolean {
    return isSameProcessAlive(proc.pid, proc.startTime);
  }

  /** Why our own child ended ("exited with code 1"), or "exited" for an adopted one. */
  exitReason(proc: ReleaseProcess): string {
    return this.exits.get(proc.pid) ?? "exited";
  }

  /** Whether the process is our own child whose exit event has not come yet. */
  exitPending(proc: ReleaseProcess): boolean {
    return this.children.has(proc.pid) && !this.exits.has(proc.pid);
  }

  /**
   * exitReason once Node has reaped our own child: the kernel shows a process dead a moment
   * before its exit event, and a crash read in between would lose its exit code.
   */
  async settledExitReason(proc: ReleaseProcess): Promise<string> {
    const child = this.children.get(proc.pid);
    if (child && !this.exits.has(proc.pid)) {
      await Promise.race([once(child, "exit"), sleep(EXIT_EVENT_WAIT_MS, undefined, { ref: false })]);
    }
    return this.exitReason(proc);
  }

  /**
   * Follows the release's log files from the offsets the service's state saved. An offset moves
   * on only as the control plane stores the lines (LineOrigin), so an engine killed with lines
   * still unsent reads them again; those it had sent are named by their offset and stored once.
   */
  tail(serviceId: string, releaseId: string): void {
    if (this.tailers.has(releaseId)) return;
    // A paused release keeps its follow: lines its last tail sent are stored after it resumed too.
    const follow = this.follows.get(releaseId) ?? { finished: false };
    this.follows.set(releaseId, follow);
    const { paths, store } = this.options;
    const launchFile = paths.launchFile(serviceId, releaseId);
    this.masks.set(
      releaseId,
      loadingMasker(() => secretsOfLaunch(launchFile)),
    );
    const tailers = FDS.map((fd) => {
      const key = offsetKey(releaseId, fd);
      const stored = (end: number) => {
        const state = store.get(serviceId);
        if (!state || follow.finished || (state.logOffsets[key] ?? 0) >= end) return;
        state.logOffsets[key] = end;
        this.persistSoon(serviceId);
      };
      const file = path.join(paths.releaseDir(serviceId, releaseId), RUNTIME_LOG_FILES[fd]);
      // A file truncated under the app numbers its lines on from there (log-tailer.ts), saved before any of them is stored.
      const truncated = (base: number) => {
        const state = store.get(serviceId);
        if (!state || follow.finished) return;
        state.logBases = { ...state.logBases, [key]: base };
        this.persistSoon(serviceId);
      };
      const saved = store.get(serviceId);
      const numbering = { base: saved?.logBases?.[key] ?? 0, onTruncated: truncated };
      return new LogTailer(
        file,
        saved?.logOffsets[key] ?? 0,
        (lines) => {
          for (const line of lines) {
            const mask = this.masks.get(releaseId) ?? (() => withheldLine("the release's secrets are not loaded"));
            this.options.serviceLog(serviceId, releaseId, mask(line.text), fd, undefined, {
              source: lineSource(releaseId, fd, line.offset),
              stored: () => stored(line.end),
            });
          }
        },
        undefined,
        numbering,
      );
    });
    this.tailers.set(releaseId, tailers);
    for (const tailer of tailers) tailer.start();
  }

  /** One state write for the offsets of a whole batch stored at once (its lines' callbacks run together). */
  private persistSoon(serviceId: string): void {
    if (this.persistQueued.has(serviceId)) return;
    this.persistQueued.add(serviceId);
    queueMicrotask(() => {
      this.persistQueued.delete(serviceId);
      this.options.store.persistInBackground(serviceId);
    });
  }

  /** Reads the release's last lines and stops following it, keeping its offset (a restart appends to the same log). */
  async pauseTail(releaseId: string): Promise<void> {
    const tailers = this.tailers.get(releaseId) ?? [];
    this.tailers.delete(releaseId);
    await Promise.all(tailers.map((tailer) => tailer.stop()));
    this.masks.delete(releaseId);
  }

  /**
   * The release's launch file was rewritten with new secrets (a restart with new variables):
   * its lines are masked with those too from now on, and still with the old ones, which the
   * process it replaces may print until it has drained.
   */
  remask(serviceId: string, releaseId: string): void {
    const previous = this.masks.get(releaseId);
    if (!previous) return;
    const launchFile = this.options.paths.launchFile(serviceId, releaseId);
    const next = loadingMasker(() => secretsOfLaunch(launchFile));
    this.masks.set(releaseId, (text) => next(previous(text)));
  }

  /** Reads the release's last lines and forgets its offset: the release will not log again. */
  async finishTail(serviceId: string, releaseId: string): Promise<void> {
    await this.pauseTail(releaseId);
    // Lines of it stored from now on must not bring its offset back.
    const follow = this.follows.get(releaseId);
    if (follow) follow.finished = true;
    this.follows.delete(releaseId);
    const state = this.options.store.get(serviceId);
    const keys = FDS.map((fd) => offsetKey(releaseId, fd)).filter((key) => state && (key in state.logOffsets || key in (state.logBases ?? {})));
    if (state && keys.length > 0) {
      for (const key of keys) {
        delete state.logOffsets[key];
        delete state.logBases?.[key];
      }
      await this.options.store.persist(serviceId);
    }
  }

  async shutdown(): Promise<void> {
    await Promise.all([...this.tailers.values()].flat().map((tailer) => tailer.stop()));
    this.tailers.clear();
  }

  /** 0600: the launch file holds the release's environment, secrets included, to restart it after a crash. */
  writeLaunch(serviceId: string, releaseId: string, launch: LaunchSpec): Promise<void> {
    return writeJsonAtomic(this.options.paths.launchFile(serviceId, releaseId), launch, 0o600);
  }

  /** How a release is (re)started; null when it has no launch file. */
  readLaunch(serviceId: string, releaseId: string): Promise<LaunchSpec | null> {
    return readJson(this.options.paths.launchFile(serviceId, releaseId), launchSpec);
  }
}

/** The secret variables of a release, from its launch file; throws when it cannot be read (the masker then withholds lines). */
function secretsOfLaunch(launchFile: string): ResolvedVariable[] {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(launchFile, "utf8"));
  } catch (error) {
    // Never the parser's message: it quotes the file, which holds the secrets.
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(code ? `the release's launch file is unreadable (${code})` : "the release's launch file is not valid JSON");
  }
  const parsed = launchSpec.safeParse(raw);
  if (!parsed.success) throw new Error("the release's launch file is not valid");
  const launch = parsed.data;
  return launch.secretKeys.map((key) => ({ key, value: launch.env[key] ?? "", secret: true }));
}
