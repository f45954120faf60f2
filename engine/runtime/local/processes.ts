import fs from "node:fs";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { signalGroup } from "../shared/commands";

/**
 * Process identity and process-group control. Apps and builds run in their own process group
 * (spawned detached), so one signal reaches `npm start` and the node it started; a sandboxed
 * app's group also holds its sandbox, which a stop signal must pass by (stopSignalTargets).
 */

/**
 * The kernel's start time of a process (clock ticks since boot, field 22 of /proc/<pid>/stat).
 * Recorded at spawn and compared later, so a recycled pid is never mistaken for our app.
 */
export function processStartTime(pid: number): number | null {
  const stat = statOf(String(pid));
  if (!stat || stat.state === "Z" || stat.state === "X") return null;
  return Number.isFinite(stat.startTime) ? stat.startTime : null;
}

/** True while a process with this pid runs (a zombie has ended). */
export function isProcessAlive(pid: number): boolean {
  const stat = statOf(String(pid));
  return stat !== null && stat.state !== "Z" && stat.state !== "X";
}

/** True while the process with this pid is the one we started (not a zombie, not a recycled pid). */
export function isSameProcessAlive(pid: number, startTime: number): boolean {
  return processStartTime(pid) === startTime;
}

/**
 * True while a live (non-zombie) member of the process group exists. Zombies are skipped: an
 * orphaned member is reaped by PID 1, which in containers may take a second or more.
 */
export function isGroupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  for (const entry of fs.readdirSync("/proc")) {
    if (entry.charCodeAt(0) > 57) continue;
    const stat = statOf(entry); // null: ended while we looked
    if (stat?.pgid === pgid && stat.state !== "Z" && stat.state !== "X") return true;
  }
  return false;
}

/**
 * SIGTERM (or the program's own stop signal) to the group's app (stopSignalTargets), SIGKILL to
 * the whole group after the grace period. `startTime` guards against a recycled pid: if the
 * leader is gone and was ours, the group id cannot have been reused while members live.
 */
export async function stopGroup(pgid: number, startTime: number | null, graceMs = 10_000, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  const leaderStart = processStartTime(pgid);
  if (startTime !== null && leaderStart !== null && leaderStart !== startTime) return;
  const targets = stopSignalTargets(pgid);
  if (targets === "group") signalGroup(pgid, signal);
  else for (const pid of targets) signalProcess(pid, signal);
  const deadline = Date.now() + graceMs;
  while (isGroupAlive(pgid)) {
    if (Date.now() > deadline) {
      signalGroup(pgid, "SIGKILL");
      await sleep(50);
      if (Date.now() > deadline + 2_000) return;
    }
    await sleep(50);
  }
}

/**
 * Who gets a stop signal: the whole group, unless it holds a sandbox (sandbox/sandbox.ts) whose
 * app has started. There bubblewrap's outer process (its "monitor", the parent of the PID
 * namespace's init, which waits for the app's first process and exits with its status) would die
 * of a SIGTERM, SIGINT or SIGQUIT at once, and the release's keeper, the process the engine
 * tracks, with it while the app still drains (with --die-with-parent, as releases ran before,
 * the whole sandbox with it). So the monitor is passed by and every other member is signalled, the
 * app inside included (the host sees its processes, and their group, under host pids). The others
 * let it through: the keeper traps it, and the namespace's init (bubblewrap's reaper, no handler)
 * is spared by the kernel, which delivers only handled signals to an init from outside its
 * namespace. The SIGKILL after the grace still goes to the whole group, monitor and init included,
 * and the init's death takes the rest of the namespace with it. A sandbox whose init has no child
 * yet (still mounting) holds no app to drain: the group is signalled.
 */
function stopSignalTargets(pgid: number): number[] | "group" {
  const members = new Map<number, { ppid: number; nspid: number[] }>();
  const parents = new Set<number>();
  for (const entry of fs.readdirSync("/proc")) {
    if (entry.charCodeAt(0) > 57) continue;
    const stat = statOf(entry);
    if (!stat) continue;
    parents.add(stat.ppid);
    if (stat.pgid !== pgid || stat.state === "Z" || stat.state === "X") continue;
    members.set(Number(entry), { ppid: stat.ppid, nspid: namespacePids(entry) });
  }
  const monitors = new Set<number>();
  for (const [pid, member] of members) {
    // An init: pid 1 of a namespace below its parent's (NSpid lists a pid per namespace, innermost last).
    const isInit = member.nspid.length > 1 && member.nspid.at(-1) === 1;
    if (isInit && parents.has(pid)) monitors.add(member.ppid);
  }
  if (monitors.size === 0) return "group";
  return [...members.keys()].filter((pid) => !monitors.has(pid));
}

/** State, parent, process group and start time of a process (fields 3-5 and 22 of /proc/<pid>/stat); null once it ended. */
function statOf(pid: string): { state: string; ppid: number; pgid: number; startTime: number } | null {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { state: fields[0]!, ppid: Number(fields[1]), pgid: Number(fields[2]), startTime: Number(fields[19]) };
}

/** The process's pid in each PID namespace it is in, this /proc's first (the NSpid line, Linux 4.1+); [] when unknown. */
function namespacePids(pid: string): number[] {
  try {
    const line = /^NSpid:\s*(.*)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return line ? line.trim().split(/\s+/).map(Number) : [];
  } catch {
    return [];
  }
}

function signalProcess(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

/**
 * True when a member of the process group holds the listening socket on `port`. A health check
 * that reached some other process which grabbed the port first (another engine, another app)
 * must not pass for our release.
 */
export function groupListensOn(pgid: number, port: number): boolean {
  return pidsListeningOn(port, (pid) => processGroupOf(pid) === pgid).length > 0;
}

/**
 * The processes (pids as this host sees them) holding a listening TCP socket on `port`, among
 * those `include` accepts, from /proc/net/tcp{,6} and their file descriptors. An app in its
 * sandbox knows only its pid inside its namespace; this is how the host finds it.
 */
export function pidsListeningOn(port: number, include: (pid: number) => boolean = () => true): number[] {
  const portHex = port.toString(16).toUpperCase().padStart(4, "0");
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = fs.readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const columns = line.trim().split(/\s+/);
      // local_address is column 1 ("ADDR:PORT"), st column 3 (0A = LISTEN), inode column 9.
      if (columns[1]?.endsWith(`:${portHex}`) && columns[3] === "0A" && columns[9]) inodes.add(`socket:[${columns[9]}]`);
    }
  }
  if (inodes.size === 0) return [];
  return fs
    .readdirSync("/proc")
    .filter((entry) => entry.charCodeAt(0) <= 57 && include(Number(entry)) && holdsOneOf(entry, inodes))
    .map(Number);
}

/** True when process `pid` has a file descriptor open on one of `targets` (as readlink shows it, `socket:[inode]`). */
function holdsOneOf(pid: string, targets: Set<string>): boolean {
  let fds: string[];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false; // Ended while we looked, or not ours to read.
  }
  return fds.some((fd) => {
    try {
      return targets.has(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      // That descriptor was closed after the listing: a busy process (the listener itself) does it all the time.
      return false;
    }
  });
}

/** The process group of a process; null once it ended. */
function processGroupOf(pid: number): number | null {
  return statOf(String(pid))?.pgid ?? null;
}

/** True when nothing listens on 127.0.0.1:`port` (get-port would not do: it withholds ports it handed out recently). */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen({ host: "127.0.0.1", port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}
