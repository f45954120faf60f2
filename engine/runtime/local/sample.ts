import fs from "node:fs/promises";
import pidusage from "pidusage";

/** How long one scan of /proc answers for: the releases sampled in one collection (engine/metrics-collector.ts) share it. */
const SCAN_REUSE_MS = 1_000;
/**
 * Reads of /proc in flight at once: the scan runs on libuv's thread pool (four threads), which
 * also serves the engine's log tailing and journal, so it must not queue hundreds of reads ahead of them.
 */
const SCAN_CONCURRENCY = 8;

let lastScan: { at: number; groups: Promise<Map<number, number[]>> } | null = null;

/**
 * The live processes of the host by process group (field 5 of /proc/<pid>/stat), read
 * asynchronously: a synchronous scan held the event loop 6 to 32 ms per release on a busy host,
 * and that went straight into log and shell latency (issue 17, item 7).
 */
async function scanGroups(): Promise<Map<number, number[]>> {
  const pids = (await fs.readdir("/proc")).filter((entry) => entry.charCodeAt(0) <= 57);
  const groups = new Map<number, number[]>();
  const read = async (pid: string) => {
    let stat: string;
    try {
      stat = await fs.readFile(`/proc/${pid}/stat`, "utf8");
    } catch {
      return; // Ended while we looked.
    }
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z" || fields[0] === "X") return;
    const pgid = Number(fields[2]);
    const members = groups.get(pgid) ?? [];
    groups.set(pgid, members);
    members.push(Number(pid));
  };
  for (let next = 0; next < pids.length; next += SCAN_CONCURRENCY) await Promise.all(pids.slice(next, next + SCAN_CONCURRENCY).map(read));
  return groups;
}

/** The live members of a process group, from a scan of /proc shared by the calls of the same second. */
export async function groupMembers(pgid: number): Promise<number[]> {
  const now = performance.now();
  if (!lastScan || now - lastScan.at > SCAN_REUSE_MS) lastScan = { at: now, groups: scanGroups() };
  return (await lastScan.groups).get(pgid) ?? [];
}

/**
 * CPU (percent of one core since pidusage's previous look at each pid) and resident memory of a
 * release's process group: `npm start` and the node it started count together.
 */
export async function sampleGroup(pgid: number): Promise<{ cpuPercent: number; memoryBytes: number }> {
  const members = await groupMembers(pgid);
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
