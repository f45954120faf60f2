import fs from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

/** The live (non-zombie) processes whose working directory is `dir` or under it, from /proc, with their process group. */
export function processesUnder(dir: string): Array<{ pid: number; pgid: number; cwd: string }> {
  const found: Array<{ pid: number; pgid: number; cwd: string }> = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cwd = fs.readlinkSync(`/proc/${entry}/cwd`);
      if (cwd !== dir && !cwd.startsWith(`${dir}/`)) continue;
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] === "Z") continue;
      found.push({ pid: Number(entry), pgid: Number(fields[2]), cwd });
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

/**
 * Kills every process group whose member runs with a working directory under `dir` (apps,
 * builds, the router of a test's engine home), then waits until they are gone. Engines leave
 * apps and the router running on purpose, so tests must clean up this way.
 */
export async function killProcessesUnder(dir: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const groups = new Set(processesUnder(dir).map(({ pid, pgid }) => (pgid > 1 && pgid !== process.pid ? pgid : pid)));
    if (groups.size === 0 || Date.now() > deadline) return;
    for (const pgid of groups) {
      try {
        process.kill(-pgid, "SIGKILL");
      } catch {
        try {
          process.kill(pgid, "SIGKILL");
        } catch {
          // Gone already.
        }
      }
    }
    await sleep(50);
  }
}

/** Ends everything a test's engine home left running (apps, router), then removes the home. */
export async function removeEngineHome(home: string): Promise<void> {
  await killProcessesUnder(home);
  await fs.promises.rm(home, { recursive: true, force: true });
}
