import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { childEnv } from "./processes-env";

/**
 * The processes a command leaves behind when it ends: `server & npm test` leaves the server, a
 * `setsid daemon` leaves a daemon in a session of its own, out of reach of the signal to the
 * command's process group. Each command runs with a random id in its environment, which every
 * process it starts inherits whatever group or session it moves to; the ones still carrying it
 * after the command ended are its leftovers. GitHub Actions' runner finds a job's orphans the same
 * way (RUNNER_TRACKING_ID), as Jenkins does (its ProcessTreeKiller's BUILD_ID cookie).
 *
 * Why not the pipes the command's output comes through: only the leftovers that kept them hold
 * them, and Node gives no public way to name the pipe. Why not a cgroup: commands (builds, jobs,
 * git) get none; only releases with limits do. Under bubblewrap none of this is needed (the PID
 * namespace ends with the command), and it does no harm.
 */

export const TRACKING_VAR = "SLIPWAY_TRACKING_ID";

/**
 * The live processes carrying this tracking id, from /proc/<pid>/environ (the environment a
 * process started with; zombies have none). Another user's processes cannot be read unless the
 * engine is root, as it is wherever commands run as other users.
 */
export function trackedProcesses(trackingId: string): number[] {
  const needle = Buffer.from(`${TRACKING_VAR}=${trackingId}\0`);
  const pids: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (entry.charCodeAt(0) > 57 || Number(entry) === process.pid) continue;
    let environ: Buffer;
    try {
      environ = fs.readFileSync(`/proc/${entry}/environ`);
    } catch {
      continue; // Ended while we looked, or not ours to read.
    }
    const at = environ.indexOf(needle);
    // A whole entry: at the start or after the previous entry's NUL.
    if (at === 0 || (at > 0 && environ[at - 1] === 0)) pids.push(Number(entry));
  }
  return pids;
}

/**
 * SIGKILLs the processes carrying this tracking id, again while any is found (one may fork
 * between the look and the kill), for at most a second. SIGKILL, as the command runner does to
 * its group's leftovers: a build's stray server has nothing to save.
 */
export async function killTracked(trackingId: string): Promise<void> {
  const deadline = Date.now() + 1_000;
  for (;;) {
    const pids = trackedProcesses(trackingId);
    if (pids.length === 0 || Date.now() > deadline) return;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Gone already.
      }
    }
    // A killed process keeps its environment until it is a zombie: give the kernel a moment.
    await sleep(20);
  }
}

/**
 * A tracking id whose processes are killed when this engine process ends, however it ends (a
 * SIGKILL, the OOM killer): shells, execs and build commands must not outlive it, and without the sandbox nothing
 * else ends them (they run in process groups of their own, so no signal to the engine's reaches
 * them; a detached daemon is out of reach of any group). PR_SET_PDEATHSIG is not available from
 * Node, and `setpriv --pdeathsig` would reach only the one process it starts. Instead a watcher (a
 * shell) holds the read end of a pipe only the engine writes to: the kernel closes the engine's
 * end when it dies, the watcher reads EOF and kills what carries an id of this engine's.
 */
export function engineBoundTrackingId(): string {
  startWatcher();
  return `${ENGINE_RUN}-${randomUUID()}`;
}

/** This engine process's part of its engine-bound tracking ids. */
const ENGINE_RUN = randomUUID();

/**
 * Kills, a few rounds over (a process may fork meanwhile), what carries an id starting with $1.
 * grep -z reads each environment entry as a line, so ^ anchors at the start of an entry.
 */
const WATCHER_SCRIPT = `read _
pattern="^${TRACKING_VAR}=$1-"
for round in 1 2 3 4 5 6 7 8 9 10; do
  pids=$(grep -lsz -e "$pattern" /proc/[0-9]*/environ | sed -e 's,^/proc/,,' -e 's,/environ$,,')
  [ -n "$pids" ] || exit 0
  kill -9 $pids 2>/dev/null
  sleep 0.05
done`;

let watcher: ChildProcess | null = null;

function startWatcher(): void {
  if (watcher && watcher.exitCode === null && watcher.signalCode === null) return;
  // Its own process group, so that a Ctrl-C to the engine's does not end it before the engine;
  // an environment of its own, without a tracking id, so that it does not kill itself.
  const child = spawn("/bin/sh", ["-c", WATCHER_SCRIPT, "slipway-exec-watcher", ENGINE_RUN], {
    stdio: ["pipe", "ignore", "ignore"],
    detached: true,
    env: childEnv({ PATH: process.env.PATH ?? "/usr/bin:/bin" }),
  });
  child.on("error", () => undefined);
  child.stdin.on("error", () => undefined);
  // Neither the watcher nor its pipe keeps the engine running.
  child.unref();
  (child.stdin as unknown as { unref(): void }).unref();
  watcher = child;
}
