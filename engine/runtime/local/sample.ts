import fs from "node:fs";
import pidusage from "pidusage";

/** The live members of a process group (from /proc: field 5 of stat is the group id). */
export function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (entry.charCodeAt(0) > 57) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) === pgid && fields[0] !== "Z" && fields[0] !== "X") members.push(Number(entry));
    } catch {
      // Ended while we looked.
    }
  }
  return members;
}

/**
 * CPU (percent of one core since pidusage's previous look at each pid) and resident memory of a
 * release's process group: `npm start` and the node it started count together.
 */
export async function sampleGroup(pgid: number): Promise<{ cpuPercent: number; memoryBytes: number }> {
  const members = groupMembers(pgid);
  if (members.length === 0) return { cpuPercent: 0, memoryBytes: 0 };
  let stats: Record<string, { cpu: number; memory: number }>;
  try {
    stats = (await pidusage(members)) as unknown as Record<string, { cpu: number; memory: number }>;
  } catch {
    // A member ended between the listing and the read: sample the ones left, one by one.
    stats = {};
    for (const pid of members) {
      try {
        stats[pid] = await pidusage(pid);
      } catch {
        // Gone.
      }
    }
  }
  let cpuPercent = 0;
  let memoryBytes = 0;
  for (const stat of Object.values(stats)) {
    cpuPercent += Number.isFinite(stat.cpu) ? stat.cpu : 0;
    memoryBytes += stat.memory;
  }
  return { cpuPercent: Math.round(cpuPercent * 100) / 100, memoryBytes };
}
