import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import type { z } from "zod";
import type { sandboxSpec } from "../layout";
import type { ServiceUser } from "./service-users";

const execFileAsync = promisify(execFile);

/**
 * The sandbox of everything a service runs on the local runtime (builds, releases, jobs,
 * databases, shells): bubblewrap (https://github.com/containers/bubblewrap) builds a mount,
 * PID, IPC and UTS namespace around the command, in which the system is read-only, /tmp is its
 * own, and only the service's own directories exist (no platform home, no engine state, no
 * other service). As root, the engine first drops to the service's own unprivileged user
 * (setpriv, util-linux) with no-new-privileges, so the kernel also keeps services apart by uid.
 * The network is the host's, as before (outbound HTTP, the environment's databases).
 */
export type SandboxHost =
  | {
      kind: "bubblewrap";
      bwrap: string;
      /** setpriv when the engine is root: each service runs as its own user. Null: services run as the engine's user, namespaced. */
      setpriv: string | null;
      /** How the system appears inside: read-only binds and the merged-/usr symlinks of this host. */
      system: string[];
    }
  | { kind: "none"; reason: string };
export type BubblewrapHost = Extract<SandboxHost, { kind: "bubblewrap" }>;

/**
 * What one sandboxed command may see (layout.ts's `sandboxSpec`, kept in launch.json): its user,
 * the directories bound read-write at the same path (the release's checkout, the service's home,
 * a database's data), a few read-only ones (the platform's static server, PostgreSQL's binaries),
 * and the passwd and group files that name its user `app`.
 */
export type SandboxSpec = z.infer<typeof sandboxSpec>;

/** Top-level paths of the system shown read-only (each only where the host has it). */
const SYSTEM_PATHS = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt"];

/** True for a path the sandbox shows anyway (under /usr, /etc…). */
export function isSystemPath(file: string): boolean {
  return SYSTEM_PATHS.some((dir) => file === dir || file.startsWith(`${dir}/`));
}

/** Read-only mounts that show this host's system: a merged-/usr symlink stays a symlink. */
export function systemMounts(extra: readonly string[] = []): string[] {
  const args: string[] = [];
  const seen = new Set<string>();
  const add = (dir: string) => {
    if (seen.has(dir)) return;
    seen.add(dir);
    let stat: fs.Stats;
    try {
      stat = fs.lstatSync(dir);
    } catch {
      return;
    }
    if (stat.isSymbolicLink()) args.push("--symlink", fs.readlinkSync(dir), dir);
    else args.push("--ro-bind", dir, dir);
  };
  for (const dir of SYSTEM_PATHS) add(dir);
  // Node itself where it is not under /usr (nvm, a tarball under /opt or a home).
  const nodePrefix = path.dirname(path.dirname(process.execPath));
  if (!isSystemPath(nodePrefix)) add(nodePrefix);
  // A resolv.conf that links into /run (systemd-resolved) needs its target, or DNS fails inside.
  try {
    const resolv = fs.realpathSync("/etc/resolv.conf");
    if (!resolv.startsWith("/etc/")) add(path.dirname(resolv));
  } catch {
    // No resolver configuration: nothing to show.
  }
  for (const dir of extra) add(dir);
  return args;
}

/** The command line that runs `argv` in the sandbox. */
export function sandboxArgv(
  host: BubblewrapHost,
  spec: SandboxSpec,
  argv: readonly string[],
  /** `outlivesEngine`: a release, which keeps running when the engine stops (builds, jobs and shells end with it). */
  options: { cwd: string; outlivesEngine: boolean },
): string[] {
  const drop = host.setpriv && spec.user ? [host.setpriv, `--reuid=${spec.user.uid}`, `--regid=${spec.user.gid}`, "--clear-groups", "--no-new-privs"] : [];
  return [
    ...drop,
    // The keeper runs as the service's user too: no process of a service runs as root.
    ...(options.outlivesEngine ? KEEPER : []),
    host.bwrap,
    // Every namespace but the network; without root, a user namespace too (bubblewrap is not setuid on Debian).
    "--unshare-all",
    "--share-net",
    "--cap-drop",
    "ALL",
    ...host.system,
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "--tmpfs",
    "/tmp",
    "--tmpfs",
    "/var/tmp",
    ...(spec.identity ? ["--ro-bind", spec.identity.passwd, "/etc/passwd", "--ro-bind", spec.identity.group, "/etc/group"] : []),
    ...spec.readonly.flatMap((dir) => ["--ro-bind", dir, dir]),
    ...spec.writable.flatMap((dir) => ["--bind", dir, dir]),
    // The root bubblewrap builds (and the empty directories it made to hold the binds) is read-only too.
    "--remount-ro",
    "/",
    // A build's, job's or shell's sandbox dies with the engine. Not a release's (see KEEPER).
    ...(options.outlivesEngine ? [] : ["--die-with-parent"]),
    "--chdir",
    options.cwd,
    "--",
    ...argv,
  ];
}

/**
 * A release's sandbox hangs off a keeper shell, the process the engine tracks: the keeper lives
 * on when the engine stops and ends with the release's exit code when the release ends. Stop
 * signals reach the app directly (one process group, stopSignalTargets in ../processes.ts); the
 * keeper only waits through them: a trapped signal that arrives while a foreground command runs
 * waits for it to end, and `:` then leaves `$?`, the release's status, as it was. Trapped, not
 * ignored: an ignored signal would be inherited.
 *
 * Bubblewrap runs in the foreground, not as a background job (`"$@" &` and a `wait`): a
 * non-interactive shell starts a background job with SIGINT and SIGQUIT ignored ("Asynchronous
 * Lists" in https://pubs.opengroup.org/onlinepubs/9699919799/utilities/V3_chap02.html), which
 * stays so across exec and which no shell inside can undo, so the app would start deaf to them
 * (no KeyboardInterrupt in Python, a start script's `trap ... INT` silently ignored). A
 * foreground child gets a trapped signal at its default instead. Nor may the shell exec
 * bubblewrap in its own place (the keeper would be gone): the `exit` keeps bubblewrap from being
 * the last command, which some shells exec.
 *
 * A release's sandbox is a process group like an unsandboxed release, not a unit that dies at
 * once: it runs without --die-with-parent. With it, bubblewrap's PID-namespace init is SIGKILLed
 * as soon as bubblewrap's outer process ends, which it does when the app's first process exits:
 * `npm start` exits on SIGTERM without waiting for its node, and the init's death would SIGKILL
 * the node mid-drain. Without it, the init outlives that and reaps until the namespace is empty,
 * so what the app started drains in its grace period as it would unsandboxed; a stop waits for
 * the whole group, and the SIGKILL after the grace reaches the init, which takes the namespace
 * with it. A keeper killed alone leaves the sandbox running in its group: supervision then takes
 * the release for crashed and stops the group (ReleaseProcesses.forget), as it does unsandboxed.
 */
const KEEPER = ["/bin/sh", "-c", 'trap : TERM INT QUIT HUP; "$@"; exit "$?"', "slipway-keeper"];

/** Writes the passwd and group files a service sees: root, nobody, and its own user `app` whose home is `home`. */
export function identityFiles(dir: string, user: ServiceUser | null, home: string): { passwd: string; group: string } {
  const uid = user?.uid ?? process.getuid?.() ?? 0;
  const gid = user?.gid ?? process.getgid?.() ?? 0;
  const passwd = path.join(dir, "passwd");
  const group = path.join(dir, "group");
  fs.writeFileSync(
    passwd,
    `root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\napp:x:${uid}:${gid}:slipway service:${home}:/bin/sh\n`,
    {
      mode: 0o644,
    },
  );
  fs.writeFileSync(group, `root:x:0:\nnogroup:x:65534:\napp:x:${gid}:\n`, { mode: 0o644 });
  return { passwd, group };
}

function onPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin").split(":")) {
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return null;
}

/**
 * What this host can do, found by running a sandbox for real (as an unprivileged user when the
 * engine is root): a host without bubblewrap, or where user namespaces are disabled, cannot.
 * `extraReadonly` (SLIPWAY_SANDBOX_READONLY) shows toolchains installed outside the system paths.
 */
export async function detectSandbox(options: { probeUser: ServiceUser; extraReadonly?: string[] }): Promise<SandboxHost> {
  const bwrap = onPath("bwrap");
  if (!bwrap) return { kind: "none", reason: "bubblewrap (bwrap) is not installed: apt-get install bubblewrap" };
  const root = process.getuid?.() === 0;
  const setpriv = root ? onPath("setpriv") : null;
  if (root && !setpriv) return { kind: "none", reason: "setpriv (util-linux) is not installed, so services cannot run as users of their own" };
  const host = { kind: "bubblewrap" as const, bwrap, setpriv, system: systemMounts(options.extraReadonly) };
  const probe: SandboxSpec = { user: root ? options.probeUser : null, writable: [], readonly: [], identity: null };
  const [command, ...args] = sandboxArgv(host, probe, ["/bin/true"], { cwd: "/", outlivesEngine: false });
  try {
    await execFileAsync(command!, args, { timeout: 10_000 });
  } catch (error) {
    const detail = ((error as { stderr?: string }).stderr ?? (error as Error).message).trim().split("\n").at(-1);
    return { kind: "none", reason: `bubblewrap cannot build a sandbox on this host (user namespaces disabled?): ${detail}` };
  }
  return host;
}
