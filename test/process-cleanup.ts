import fs from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * Kills every process group whose member runs with a working directory under `dir` (apps,
 * builds, the router of a test's engine home), then waits until they are gone. Engines leave
 * apps and the router running on purpose, so tests must clean up this way.
 */
export async function killProcessesUnder(dir: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const groups = new Set<number>();
    for (const entry of fs.readdirSync("/proc")) {
      if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
      try {
        const cwd = fs.readlinkSync(`/proc/${entry}/cwd`);
        if (cwd !== dir && !cwd.startsWith(`${dir}/`)) continue;
        const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        if (fields[0] === "Z") continue;
        const pgid = Number(fields[2]);
        groups.add(pgid > 1 && pgid !== process.pid ? pgid : Number(entry));
      } catch {
        // The process ended while we looked.
      }
    }
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
