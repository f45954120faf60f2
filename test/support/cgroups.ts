import fs from "node:fs";
import path from "node:path";

/**
 * Removes the (empty) control groups the local runtime made for the releases under an engine
 * home: tests kill apps directly (killProcessesUnder), so the runtime never removes them itself.
 * Call it before the home is deleted (it reads the release ids there); it returns the function
 * that removes the groups once their processes are gone.
 */
export function releaseCgroupsCleanup(home: string, root = "/sys/fs/cgroup"): () => void {
  const releases = new Set<string>();
  const servicesDir = path.join(home, "services");
  for (const service of fs.existsSync(servicesDir) ? fs.readdirSync(servicesDir) : []) {
    const dir = path.join(servicesDir, service, "releases");
    for (const release of fs.existsSync(dir) ? fs.readdirSync(dir) : []) releases.add(release);
  }
  return () => removeGroups(releases, root);
}

function removeGroups(releases: Set<string>, root: string): void {
  for (const hierarchy of ["memory", "cpu", "unified", "."]) {
    const parent = path.join(root, hierarchy, "slipway");
    if (!fs.existsSync(parent)) continue;
    for (const group of fs.readdirSync(parent)) {
      if (![...releases].some((release) => group.startsWith(`${release}-`))) continue;
      try {
        fs.rmdirSync(path.join(parent, group));
      } catch {
        // Not empty yet, or gone.
      }
    }
  }
}
