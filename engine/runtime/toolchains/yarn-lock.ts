import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { StepError } from "../runtime";

/**
 * Yarn 1 (classic) downloads each package from the URL its yarn.lock's `resolved` line names,
 * whatever registry it is configured with (yarnpkg/yarn#4120, #3558): a lockfile written against
 * registry.yarnpkg.com or registry.npmjs.org sends the install there, so an engine behind a
 * mirror could not install a yarn-classic app at all. npm, pnpm and yarn berry ask the configured
 * registry. Before a yarn 1 install, the engine points those URLs at its registry, in the
 * checkout's copy of the lockfile only (the repository is left as it is); a mirror serves a
 * package's tarball at the same path below its URL as the public registry does.
 */

/** The hosts yarn 1 writes into yarn.lock, and npm's; both serve the same packages at the same paths. */
const PUBLIC_HOSTS = ["registry.yarnpkg.com", "registry.npmjs.org"];

/** Whether `registry` is the public npm registry (nothing to rewrite, and the engine's default). */
export function isPublicRegistry(registry: string): boolean {
  return PUBLIC_HOSTS.includes(new URL(registry).hostname);
}

/** A yarn.lock's `resolved` URL prefix on a public host, at the start of its line's value (quoted or not). */
const RESOLVED_ON_PUBLIC_HOST = /^(\s+resolved\s+"?)https?:\/\/(registry\.yarnpkg\.com|registry\.npmjs\.org)\//gm;

/** The lockfile with its `resolved` URLs on the public hosts pointed at `registry`, and how many were (by host). */
export function rewriteYarnLockHosts(text: string, registry: string): { text: string; rewritten: Map<string, number> } {
  const base = registry.endsWith("/") ? registry : `${registry}/`;
  const rewritten = new Map<string, number>();
  const result = text.replace(RESOLVED_ON_PUBLIC_HOST, (_match, lead: string, host: string) => {
    rewritten.set(host, (rewritten.get(host) ?? 0) + 1);
    return `${lead}${base}`;
  });
  return { text: result, rewritten };
}

/**
 * Points the `resolved` URLs of `<installDir>/yarn.lock` at `registry` (above), before a yarn 1
 * install, and says what it did for the build log; null when there is nothing to do (the public
 * registry, no yarn.lock, no URL on a public host). Run by the engine (root) before the checkout
 * is handed to the service's user: it never reads or writes through a symbolic link (the lockfile
 * or a directory above it in the checkout could point anywhere on the host) nor anything but a
 * regular file, and writes through the handle it read.
 */
export async function pointYarnLockAtRegistry(checkout: string, installDir: string, registry: string): Promise<string | null> {
  if (isPublicRegistry(registry)) return null;
  const root = await fsp.realpath(checkout);
  const dir = await fsp.realpath(installDir).catch(() => null);
  if (dir === null) return null;
  if (dir !== root && !dir.startsWith(`${root}${path.sep}`)) throw new StepError(`${path.relative(checkout, installDir)} points outside the repository`);
  const shown = path.relative(root, path.join(dir, "yarn.lock"));
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(path.join(dir, "yarn.lock"), fs.constants.O_RDWR | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return null;
    if (code === "ELOOP") throw new StepError(`${shown} is a symbolic link: the engine reads only regular files of the repository`);
    if (code === "EISDIR") throw new StepError(`${shown} is not a regular file`);
    throw error;
  }
  try {
    if (!(await handle.stat()).isFile()) throw new StepError(`${shown} is not a regular file`);
    const { text, rewritten } = rewriteYarnLockHosts(await handle.readFile("utf8"), registry);
    if (rewritten.size === 0) return null;
    const bytes = Buffer.from(text, "utf8");
    await handle.truncate(0);
    await handle.write(bytes, 0, bytes.length, 0);
    const counts = [...rewritten].map(([host, count]) => `${count} on ${host}`).join(", ");
    return `${shown}: its resolved URLs (${counts}) now point at ${registry}, as yarn 1 downloads from its lockfile's URLs, not from the registry it is configured with`;
  } finally {
    await handle.close();
  }
}
