import { execFile } from "node:child_process";
import fsp from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import type pino from "pino";
import { jobState } from "../job-runs";
import { isServiceId } from "../release-runtime";
import { readJson } from "../shared/files";
import { type Layout, serviceState } from "./layout";
import { FDS, type LocalStore, offsetKey, releasesWithOffsets, RUNTIME_LOG_FILES } from "./release-processes";

const execFileAsync = promisify(execFile);

/** What each runtime log file keeps of the lines the control plane stored (SLIPWAY_RUNTIME_LOG_KEEP_MB). */
export const DEFAULT_RUNTIME_LOG_KEEP_MB = 16;
/** Releases of a service kept besides those in use (SLIPWAY_RELEASES_KEPT): their logs and launch files, to look at by hand. */
export const DEFAULT_RELEASES_KEPT = 3;
const PASS_MS = 60_000;
/** Never freed at a log's end: a crash's message quotes the last 16 KiB (local-runtime.ts lastLines). */
const TAIL_BYTES = 64 * 1024;
/** Holes are punched in whole blocks (4 KiB on ext4, xfs, btrfs and tmpfs); a part block would only be zeroed. */
const BLOCK_BYTES = 4096;
/** A release's directory name: its UTC time stamp first (release-runtime.ts newRelease), so names sort by age. */
const RELEASE_ID = /^\d{14}-[\w-]+$/;

export type ReleaseDiskOptions = {
  paths: Layout;
  store: LocalStore;
  logger: pino.Logger;
  /** Bytes of stored lines each log file keeps before its start is freed. */
  logKeepBytes: number;
  /** Releases kept besides those in use, newest first; at least 1 (see pruneReleases). */
  releasesKept: number;
  /** How often every service is looked at; a minute by default, shortened by tests. */
  passMs?: number;
};

/**
 * Keeps the disk a service's releases take bounded, without stopping the app or losing a line the
 * control plane has not stored:
 *
 * - A live release's runtime.log and runtime.stderr.log are files the app holds open (O_APPEND:
 *   it keeps logging while no engine runs), so they can be neither renamed away (the app would
 *   write on into the renamed file) nor truncated (a line written between the last read and the
 *   truncation would be lost, and the app's next write lands at its old offset, leaving a sparse
 *   file anyway). Instead the start of each file, up to what the control plane stored, is
 *   deallocated in place (fallocate's punch-hole, as `fallocate --dig-holes` or journald do to
 *   reclaim space): the file keeps its size and every byte keeps its offset, so the tailer's
 *   offsets, the lines' names (sources) and an engine restart work as before, and what the app
 *   writes meanwhile is never touched. What is freed stops at the offset saved in the service's
 *   state file (not the one in memory, which may be ahead of it): a restarted engine reads on from
 *   the saved offset, and must never read a hole (zeros) as lines. The last
 *   max(keep, 64 KiB) bytes before that offset stay, and so does everything after it, so a
 *   control plane that cannot store makes the file grow until it can again (nothing unstored is
 *   ever dropped; the outbox bounds what it holds on its own, engine/outbox.ts). A file system
 *   without punch-hole (ext3, NFS before 4.2) is told once in the engine's log and its logs grow
 *   as before.
 * - A release that no longer serves keeps its logs, launch file and outputs, for a look by hand;
 *   only the newest `releasesKept` of them stay, the others are removed whole. A release in use
 *   is never removed: the live one, one being deployed, a job's, one still followed (its offsets
 *   saved: a stopped or sleeping service's), one with a checkout (dropped when it stops being
 *   needed) or a recorded process (process-records.ts: stopped before it goes).
 */
export class ReleaseDisk {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  /** Per log file and base, how far its start was freed by this engine: the next pass frees only what was stored since. */
  private readonly freed = new Map<string, number>();
  /** Why holes cannot be punched here, once found: told once. */
  private unsupported: string | null = null;

  constructor(private readonly options: ReleaseDiskOptions) {}

  /** A pass now (an engine restarted after a long time finds a lot to free), then one every `passMs`. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.pass(), this.options.passMs ?? PASS_MS);
    this.timer.unref();
    void this.pass();
  }

  async shutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** Every service's logs and releases, one pass at a time. */
  pass(): Promise<void> {
    this.running ??= this.passOnce().finally(() => (this.running = null));
    return this.running;
  }

  private async passOnce(): Promise<void> {
    const { paths, logger } = this.options;
    const ids = (await fsp.readdir(paths.servicesDir).catch(() => [])).filter(isServiceId);
    for (const serviceId of ids) {
      try {
        await this.freeStoredLogs(serviceId);
      } catch (error) {
        logger.warn({ err: error, serviceId }, "could not free the stored part of the service's runtime logs");
      }
      await this.pruneReleases(serviceId);
    }
  }

  /** Deallocates the start of each followed log file, up to what the control plane stored and the state file says. */
  private async freeStoredLogs(serviceId: string): Promise<void> {
    if (this.unsupported) return;
    const { paths, store, logKeepBytes } = this.options;
    const saved = await readJson(paths.stateFile(serviceId), serviceState);
    if (!saved) return;
    const keep = Math.max(logKeepBytes, TAIL_BYTES);
    for (const releaseId of releasesWithOffsets(saved.logOffsets)) {
      for (const fd of FDS) {
        const key = offsetKey(releaseId, fd);
        const stored = saved.logOffsets[key];
        if (stored === undefined) continue;
        const base = saved.logBases?.[key] ?? 0;
        // Truncated under the app since the state was saved: the saved offset says nothing of the file's bytes now.
        if ((store.get(serviceId)?.logBases?.[key] ?? 0) !== base) continue;
        const end = Math.floor((stored - base - keep) / BLOCK_BYTES) * BLOCK_BYTES;
        const file = path.join(paths.releaseDir(serviceId, releaseId), RUNTIME_LOG_FILES[fd]);
        const freedKey = `${file}@${base}`;
        if (end <= (this.freed.get(freedKey) ?? 0)) continue;
        const stat = await fsp.stat(file).catch(() => null);
        // Gone (the release was removed meanwhile), or shorter than what was read of it (truncated since).
        if (!stat || stat.size < stored - base) continue;
        // No more on disk than it keeps (freed by an earlier engine already): nothing to do.
        if (stat.blocks * 512 > keep && !(await this.punch(file, end))) return;
        this.freed.set(freedKey, end);
      }
    }
  }

  /** `fallocate --punch-hole` (util-linux) over [0, length): false when this host cannot, told once. */
  private async punch(file: string, length: number): Promise<boolean> {
    try {
      await execFileAsync("fallocate", ["--punch-hole", "--offset", "0", "--length", String(length), file]);
      return true;
    } catch (error) {
      const failure = error as NodeJS.ErrnoException & { stderr?: string };
      const reason = failure.code === "ENOENT" ? "fallocate (util-linux) is not installed" : (failure.stderr ?? "").trim();
      // A file removed meanwhile is no reason to stop; anything else (EOPNOTSUPP) holds for the whole home.
      if (failure.code !== "ENOENT" && !/not supported/i.test(reason)) return true;
      this.unsupported = reason;
      this.options.logger.warn(
        { reason },
        "cannot free the stored part of runtime logs on this host: a live release's log files grow until it is replaced (SLIPWAY_RUNTIME_LOG_KEEP_MB has no effect)",
      );
      return false;
    }
  }

  /**
   * Removes the service's releases not in use beyond the newest `releasesKept`. At least one is
   * kept: a release's directory exists a moment before the release is registered as pending
   * (createRelease, then addPending), and the newest one is that one then.
   */
  async pruneReleases(serviceId: string): Promise<void> {
    const { paths, store, logger } = this.options;
    try {
      const releasesDir = path.dirname(paths.releaseDir(serviceId, "_"));
      const names = (await fsp.readdir(releasesDir).catch(() => [])).filter((name) => RELEASE_ID.test(name)).sort();
      const state = store.get(serviceId);
      const job = await readJson(paths.jobFile(serviceId), jobState).catch(() => null);
      const inUse = new Set([state?.current?.releaseId, job?.releaseId, ...releasesWithOffsets(state?.logOffsets ?? {})]);
      const unused: string[] = [];
      for (const releaseId of names) {
        if (inUse.has(releaseId) || (await this.holdsSomething(paths.releaseDir(serviceId, releaseId)))) continue;
        unused.push(releaseId);
      }
      for (const releaseId of unused.slice(0, Math.max(unused.length - Math.max(this.options.releasesKept, 1), 0))) {
        // Checked last, right before it goes: a deploy may have started since.
        if (store.isPending({ serviceId, releaseId })) continue;
        await fsp.rm(paths.releaseDir(serviceId, releaseId), { recursive: true, force: true });
      }
    } catch (error) {
      logger.warn({ err: error, serviceId }, "could not remove the service's old releases");
    }
  }

  /** A checkout not yet dropped (a release being built, a job running from it) or a process not yet stopped. */
  private async holdsSomething(dir: string): Promise<boolean> {
    const checkout = await fsp.stat(path.join(dir, "src")).catch(() => null);
    const processes = await fsp.readdir(path.join(dir, "processes")).catch(() => []);
    return checkout !== null || processes.length > 0;
  }
}
