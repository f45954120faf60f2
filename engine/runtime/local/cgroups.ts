import fs from "node:fs";
import path from "node:path";

/**
 * Memory and CPU limits of local releases through Linux control groups. Hosts differ: cgroup v2
 * (unified) with the memory and cpu controllers available, or v1 hierarchies (`memory/`, `cpu/`),
 * or a hybrid where v2 is mounted without controllers and v1 does the enforcing (MACHINE.md), or
 * nothing writable (an unprivileged engine). `detectCgroups` finds what works; the engine
 * reports it in its handshake (`capabilities.limits`), and a limit it cannot enforce is said so
 * in the deploy log rather than silently ignored.
 *
 * Each release process gets its own group `<hierarchy>/slipway/<name>`; the process enters it
 * before it execs the app (see `launchArgv`), so its children are born inside.
 * https://docs.kernel.org/admin-guide/cgroup-v1/memory.html, https://docs.kernel.org/admin-guide/cgroup-v2.html
 */
export type LimitsSupport = "cgroup-v2" | "cgroup-v1" | "none";
export type Limits = { memoryMb?: number; cpus?: number };

export type CgroupHost =
  { kind: "cgroup-v2"; unified: string } | { kind: "cgroup-v1"; memory: string | null; cpu: string | null } | { kind: "none"; reason: string };

const GROUP = "slipway";
const CPU_PERIOD_US = 100_000;

function writable(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function read(file: string): string | null {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return null;
  }
}

/** Makes `<dir>/slipway` and checks that it can hold groups of its own; false when it cannot. */
function prepareParent(dir: string, enableControllers?: string[]): boolean {
  try {
    const parent = path.join(dir, GROUP);
    if (enableControllers) fs.writeFileSync(path.join(dir, "cgroup.subtree_control"), enableControllers.map((c) => `+${c}`).join(" "));
    fs.mkdirSync(parent, { recursive: true });
    if (enableControllers) fs.writeFileSync(path.join(parent, "cgroup.subtree_control"), enableControllers.map((c) => `+${c}`).join(" "));
    return true;
  } catch {
    return false;
  }
}

export function detectCgroups(root = "/sys/fs/cgroup"): CgroupHost {
  // cgroup v2, mounted at the root (pure v2) or at unified/ (hybrid).
  for (const unified of [root, path.join(root, "unified")]) {
    const controllers = read(path.join(unified, "cgroup.controllers"))?.trim().split(/\s+/) ?? [];
    if (controllers.includes("memory") && controllers.includes("cpu") && writable(unified) && prepareParent(unified, ["memory", "cpu"])) {
      return { kind: "cgroup-v2", unified };
    }
  }
  // cgroup v1: one hierarchy per controller (cpu may be mounted together with cpuacct).
  const memory = path.join(root, "memory");
  const cpu = [path.join(root, "cpu"), path.join(root, "cpu,cpuacct")].find((dir) => fs.existsSync(path.join(dir, "cpu.cfs_quota_us"))) ?? null;
  const memoryOk = fs.existsSync(path.join(memory, "memory.limit_in_bytes")) && writable(memory) && prepareParent(memory);
  const cpuOk = cpu !== null && writable(cpu) && prepareParent(cpu);
  if (memoryOk) return { kind: "cgroup-v1", memory, cpu: cpuOk ? cpu : null };
  return {
    kind: "none",
    reason: fs.existsSync(root)
      ? `no writable memory controller under ${root} (cgroup v2 without the memory controller, and no writable v1 memory hierarchy)`
      : `${root} is not mounted`,
  };
}

/** The groups of one release process: the `cgroup.procs` files it must enter and what they limit. */
export type ReleaseCgroup = { dirs: string[]; procs: string[]; memoryLimitBytes: number | null; cpus: number | null };

/** Creates the groups for a release process and writes its limits; null when there is nothing to limit. */
export function createReleaseCgroup(host: CgroupHost, name: string, limits: Limits | undefined): ReleaseCgroup | null {
  if (host.kind === "none" || !limits || (limits.memoryMb === undefined && limits.cpus === undefined)) return null;
  const memoryBytes = limits.memoryMb === undefined ? null : limits.memoryMb * 1024 * 1024;
  const quota = limits.cpus === undefined ? null : Math.max(1000, Math.round(limits.cpus * CPU_PERIOD_US));
  const dirs: string[] = [];
  const make = (parent: string) => {
    const dir = path.join(parent, GROUP, name);
    fs.mkdirSync(dir, { recursive: true });
    dirs.push(dir);
    return dir;
  };
  if (host.kind === "cgroup-v2") {
    const dir = make(host.unified);
    if (memoryBytes !== null) {
      fs.writeFileSync(path.join(dir, "memory.max"), String(memoryBytes));
      // No swap on top of the limit, as container runtimes do.
      if (fs.existsSync(path.join(dir, "memory.swap.max"))) fs.writeFileSync(path.join(dir, "memory.swap.max"), "0");
    }
    if (quota !== null) fs.writeFileSync(path.join(dir, "cpu.max"), `${quota} ${CPU_PERIOD_US}`);
  } else {
    if (memoryBytes !== null && host.memory) {
      const dir = make(host.memory);
      fs.writeFileSync(path.join(dir, "memory.limit_in_bytes"), String(memoryBytes));
      const memsw = path.join(dir, "memory.memsw.limit_in_bytes");
      if (fs.existsSync(memsw)) fs.writeFileSync(memsw, String(memoryBytes));
    }
    if (quota !== null && host.cpu) {
      const dir = make(host.cpu);
      fs.writeFileSync(path.join(dir, "cpu.cfs_period_us"), String(CPU_PERIOD_US));
      fs.writeFileSync(path.join(dir, "cpu.cfs_quota_us"), String(quota));
    }
  }
  if (dirs.length === 0) return null;
  return {
    dirs,
    procs: dirs.map((dir) => path.join(dir, "cgroup.procs")),
    memoryLimitBytes: memoryBytes !== null && (host.kind === "cgroup-v2" || (host.kind === "cgroup-v1" && host.memory)) ? memoryBytes : null,
    cpus: quota !== null && (host.kind === "cgroup-v2" || (host.kind === "cgroup-v1" && host.cpu)) ? limits.cpus! : null,
  };
}

/**
 * The argv that starts `argv` inside the release's groups: a fixed POSIX sh script (no user input
 * in it: the group files come through the environment, the command as positional arguments)
 * that moves itself into each group, then execs the command, so the app and everything it
 * forks are limited from their first instruction (same pid: exec keeps it).
 */
export const CGROUP_PROCS_VAR = "SLIPWAY_CGROUP_PROCS";
export function launchArgv(argv: string[]): string[] {
  const script = `IFS=:; for f in $${CGROUP_PROCS_VAR}; do echo $$ > "$f" || exit 125; done; unset IFS ${CGROUP_PROCS_VAR}; exec "$@"`;
  return ["/bin/sh", "-c", script, "slipway-launch", ...argv];
}

/** How many times the kernel's OOM killer ended a process of the group (0 when unknown). */
export function oomKills(dirs: readonly string[]): number {
  let kills = 0;
  for (const dir of dirs) {
    // v1: memory.oom_control has an `oom_kill N` line (Linux 4.13+); v2: memory.events.
    const text = read(path.join(dir, "memory.oom_control")) ?? read(path.join(dir, "memory.events")) ?? "";
    const match = /^oom_kill (\d+)$/m.exec(text);
    if (match) kills += Number(match[1]);
  }
  return kills;
}

/** The memory limit of the group, in bytes (null without one). */
export function memoryLimitOf(dirs: readonly string[]): number | null {
  for (const dir of dirs) {
    const value = (read(path.join(dir, "memory.limit_in_bytes")) ?? read(path.join(dir, "memory.max")))?.trim();
    if (value && value !== "max" && Number(value) < 2 ** 60) return Number(value);
  }
  return null;
}

/** Removes the groups of a process that ended (the kernel refuses while a member lives). */
export function removeCgroup(dirs: readonly string[]): void {
  for (const dir of dirs) {
    try {
      fs.rmdirSync(dir);
    } catch {
      // Still busy or already gone: the next stop of the release tries again.
    }
  }
}
