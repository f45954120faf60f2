import fsp from "node:fs/promises";
import path from "node:path";

/** How a deploy took part in getting a toolchain: it found it, installed it, or waited for another deploy installing it. */
export type Provision = "cached" | "installed" | "waited";

/**
 * The toolchains the engine installs for builds and releases (Node, and the package managers
 * after it), under `<engine home>/toolchains/<kind>/<version>/`: each version installed once,
 * kept across deploys and shared by every service. Services read them and nothing else may write
 * them: directories 0755 and files 0644 (0755 when executable), owned by the engine's user.
 *
 * An install fills a temporary directory beside its destination and renames it there once
 * complete, so a version's directory either does not exist or is whole, even if the engine is
 * killed mid-download. Deploys wanting a version being installed wait for that install.
 */
export class ToolchainStore {
  private readonly installing = new Map<string, Promise<void>>();

  constructor(readonly root: string) {}

  dir(kind: string, version: string): string {
    return path.join(this.root, kind, version);
  }

  /**
   * Makes sure `kind`/`version` is installed, by `fill(tree, scratch)` if it is not (it writes the
   * toolchain's files into `tree`, and may keep downloads in `scratch`); `waiting` hears, before
   * the wait, whether this caller installs it or waits for another's install. `signal` ends this
   * caller's wait, never an install others may be waiting for: that one runs to its end (`fill` bounds it).
   */
  async ensure(
    kind: string,
    version: string,
    fill: (tree: string, scratch: string) => Promise<void>,
    options: { signal: AbortSignal; waiting?: (provision: Exclude<Provision, "cached">) => void },
  ): Promise<{ dir: string; provision: Provision }> {
    const dir = this.dir(kind, version);
    if (await exists(dir)) return { dir, provision: "cached" };
    let install = this.installing.get(dir);
    const provision = install ? "waited" : "installed";
    if (!install) {
      install = this.install(dir, fill).finally(() => this.installing.delete(dir));
      this.installing.set(dir, install);
    }
    options.waiting?.(provision);
    await untilAborted(install, options.signal);
    return { dir, provision };
  }

  /** Removes what installs cut short left behind (an engine killed mid-download); called as the engine starts, before any install. */
  async sweep(): Promise<void> {
    for (const kind of await fsp.readdir(this.root).catch(() => [])) {
      for (const entry of await fsp.readdir(path.join(this.root, kind)).catch(() => [])) {
        if (entry.startsWith(".")) await fsp.rm(path.join(this.root, kind, entry), { recursive: true, force: true });
      }
    }
  }

  private async install(dir: string, fill: (tree: string, scratch: string) => Promise<void>): Promise<void> {
    const parent = path.dirname(dir);
    await fsp.mkdir(parent, { recursive: true });
    // Passable and listable by services (their sandboxes bind a version's directory read-only).
    for (const open of [this.root, parent]) await fsp.chmod(open, 0o755);
    const scratch = await fsp.mkdtemp(path.join(parent, `.${path.basename(dir)}-`));
    try {
      const tree = path.join(scratch, "tree");
      await fsp.mkdir(tree);
      await fill(tree, scratch);
      await readOnlyForOthers(tree);
      try {
        await fsp.rename(tree, dir);
      } catch (error) {
        // Another engine process on this home renamed its copy first: that one is as good.
        const code = (error as NodeJS.ErrnoException).code;
        if ((code !== "ENOTEMPTY" && code !== "EEXIST") || !(await exists(dir))) throw error;
      }
    } finally {
      await fsp.rm(scratch, { recursive: true, force: true });
    }
  }
}

/** Directories 0755, files 0644 or 0755 (any execute bit kept as all three), symbolic links as they are. */
async function readOnlyForOthers(tree: string): Promise<void> {
  await fsp.chmod(tree, 0o755);
  for (const entry of await fsp.readdir(tree, { recursive: true, withFileTypes: true })) {
    const file = path.join(entry.parentPath, entry.name);
    if (entry.isDirectory()) await fsp.chmod(file, 0o755);
    else if (entry.isFile()) await fsp.chmod(file, ((await fsp.stat(file)).mode & 0o111) !== 0 ? 0o755 : 0o644);
  }
}

async function exists(file: string): Promise<boolean> {
  return fsp.access(file).then(
    () => true,
    () => false,
  );
}

/** `promise`, or the signal's reason once it aborts, whichever comes first (the promise runs on either way). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error as Error);
      },
    );
  });
}
