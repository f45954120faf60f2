import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";

/** Clock ticks per second of /proc's CPU times. */
const ticks = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim());

type Stat = { pid: number; ppid: number; ownMs: number; reapedMs: number };

/** A process's CPU times from /proc/<pid>/stat; null once it has exited. */
async function statOf(pid: number): Promise<Stat | null> {
  const text = await fs.readFile(`/proc/${pid}/stat`, "utf8").catch(() => null);
  if (!text) return null;
  // The command name is in parentheses and may hold spaces: the fields start after the last ")".
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const at = (field: number) => Number(fields[field - 3]);
  const ms = (value: number) => (value / ticks) * 1000;
  return { pid, ppid: at(4), ownMs: ms(at(14) + at(15)), reapedMs: ms(at(16) + at(17)) };
}

/**
 * CPU time (user and system, ms) spent so far by a process and its children: the live ones'
 * own, and what its exited children spent (counted once the parent reaped them). Reading it
 * before and after a run gives the run's CPU whatever else loads the machine.
 */
export async function cpuOfTree(rootPid: number): Promise<number> {
  const root = await statOf(rootPid);
  if (!root) throw new Error(`process ${rootPid} is gone`);
  const pids = (await fs.readdir("/proc")).filter((name) => /^\d+$/.test(name)).map(Number);
  const children = (await Promise.all(pids.map(statOf))).filter((stat): stat is Stat => stat !== null && stat.ppid === rootPid);
  return root.ownMs + root.reapedMs + children.reduce((sum, child) => sum + child.ownMs + child.reapedMs, 0);
}

/** The PostgreSQL server's (postmaster's) pid, from the first line of its data directory's postmaster.pid. */
export async function postmasterPid(dataDir: string): Promise<number> {
  return Number((await fs.readFile(`${dataDir}/postmaster.pid`, "utf8")).split("\n")[0]);
}
