import fsp from "node:fs/promises";
import path from "node:path";
import type { Layout } from "../layout";

/** Files of a service directory that only the engine may read (logs and launch files hold secrets). */
const PRIVATE_FILE = /^(runtime\.log|launch\.json|state\.json|job\.json|user\.json|fence\.json|outputs-.*\.json|.*\.pid\.json)$/;

/**
 * Brings the files of services written by an older engine (world-readable logs, state and
 * launch files) to today's modes: directories passable but not listable (0711), private files
 * 0600. A service's own trees (its checkout, home and data, owned by its user) are left as they are.
 */
export async function makePrivate(paths: Layout): Promise<void> {
  await fsp.chmod(paths.servicesDir, 0o711);
  for (const serviceId of await fsp.readdir(paths.servicesDir)) {
    const serviceDir = paths.serviceDir(serviceId);
    await restrict(serviceDir, 0o711);
    for (const entry of await list(serviceDir)) {
      const file = path.join(serviceDir, entry.name);
      if (entry.isFile() && PRIVATE_FILE.test(entry.name)) await restrict(file, 0o600);
    }
    const releases = path.join(serviceDir, "releases");
    await restrict(releases, 0o711);
    for (const release of await list(releases)) {
      if (!release.isDirectory()) continue;
      const releaseDir = path.join(releases, release.name);
      await restrict(releaseDir, 0o711);
      for (const entry of await list(releaseDir)) {
        if (entry.isFile() && PRIVATE_FILE.test(entry.name)) await restrict(path.join(releaseDir, entry.name), 0o600);
      }
    }
  }
}

async function list(dir: string) {
  return fsp.readdir(dir, { withFileTypes: true }).catch(() => []);
}

/** Takes permissions away, never adds any (a mode already stricter stays). */
async function restrict(file: string, mode: number): Promise<void> {
  const stat = await fsp.stat(file).catch(() => null);
  if (!stat) return;
  const current = stat.mode & 0o7777;
  if ((current & ~mode) !== 0) await fsp.chmod(file, current & mode);
}
