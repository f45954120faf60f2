import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { StepError } from "../../runtime";
import type { Layout } from "../layout";
import { detectSandbox, identityFiles, type SandboxHost, type SandboxSpec, sandboxArgv } from "./sandbox";
import { type ServiceUser, ServiceUsers } from "./service-users";

/** What a service's commands run as and in: its user, its home, and how it sees itself (passwd). */
export type ServiceJail = {
  user: ServiceUser | null;
  /** HOME of everything the service runs: npm's and pip's caches live here, across deploys. */
  home: string;
  /** The sandbox of a command that may write `writable` (the home is always writable). */
  spec(writable: string[], readonly?: string[]): SandboxSpec;
};

/**
 * The sandboxes of the local runtime's services: whether this host can build them, and for each
 * service its user, home and directory permissions. Fail closed: on a host that cannot sandbox,
 * nothing a service brings runs unless the cluster is marked trusted by an ADMIN.
 */
export class ServiceSandboxes {
  private host: SandboxHost = { kind: "none", reason: "the engine has not looked yet" };
  private users: ServiceUsers | null = null;

  constructor(private readonly options: { home: string; paths: Layout; claimsDir: string; host: Promise<SandboxHost> }) {}

  /** Learns what this host can do; called once as the runtime starts, before anything runs. */
  async start(): Promise<SandboxHost> {
    this.host = await this.options.host;
    const { claimsDir, paths } = this.options;
    this.users = this.host.kind === "bubblewrap" && this.host.setpriv ? new ServiceUsers({ claimsDir, serviceDir: paths.serviceDir }) : null;
    return this.host;
  }

  /**
   * The jail of a service, created on first use; null where the host cannot sandbox and the
   * cluster is trusted (commands then run as the engine's user, as on a single-user machine).
   */
  async jailOf(serviceId: string, trusted: boolean): Promise<ServiceJail | null> {
    const { host } = this;
    if (host.kind === "none") {
      if (trusted) return null;
      throw new StepError(
        `this engine cannot sandbox apps (${host.reason}); install what is missing, or an ADMIN may mark the cluster trusted (apps on it can then read the engine's files)`,
      );
    }
    const { paths } = this.options;
    const serviceDir = paths.serviceDir(serviceId);
    await fsp.mkdir(serviceDir, { recursive: true });
    await this.openForTraversal(serviceDir);
    const user = this.users?.userOf(serviceId) ?? null;
    const home = path.join(serviceDir, "home");
    await fsp.mkdir(home, { recursive: true, mode: 0o700 });
    if (user) await fsp.chown(home, user.uid, user.gid);
    const identityDir = path.join(serviceDir, "sandbox");
    await fsp.mkdir(identityDir, { recursive: true, mode: 0o711 });
    const identity = identityFiles(identityDir, user, home);
    return { user, home, spec: (writable, readonly = []) => ({ user, writable: [home, ...writable], readonly, identity }) };
  }

  /** The command line of `argv` in its sandbox (unchanged without one: a trusted cluster on a host that cannot sandbox). */
  wrap(spec: SandboxSpec | undefined, argv: readonly string[], options: { cwd: string; outlivesEngine: boolean }): string[] {
    if (!spec) return [...argv];
    // Fail closed: what was built to run sandboxed never runs without one (bubblewrap removed since).
    if (this.host.kind === "none") throw new StepError(`this release runs in a sandbox, which this host can no longer build: ${this.host.reason}`);
    return sandboxArgv(this.host, spec, argv, options);
  }

  /** Gives a tree the engine wrote (a checkout) to the service's user, so its build can write there and nothing else can read it. */
  async handOver(dir: string, jail: ServiceJail | null): Promise<void> {
    const user = jail?.user;
    if (!user) return;
    await fsp.chown(dir, user.uid, user.gid);
    for (const entry of await fsp.readdir(dir, { recursive: true })) await fsp.lchown(path.join(dir, entry), user.uid, user.gid);
    await fsp.chmod(dir, 0o700);
  }

  /** The service's uid goes back once its files are gone. */
  free(serviceId: string): void {
    this.users?.free(serviceId);
  }

  /**
   * bubblewrap binds a service's directories as the service's user, which must be able to pass
   * through every directory above them (execute only: it lists and reads none of them). Those of
   * the engine's home are opened so; one above it that is closed is an error naming it.
   */
  private async openForTraversal(dir: string): Promise<void> {
    if (!this.users) return;
    const home = path.resolve(this.options.home);
    for (let current = dir; current !== path.dirname(current); current = path.dirname(current)) {
      const { mode } = await fsp.stat(current);
      if ((mode & 0o001) !== 0) continue;
      if (current === home || current.startsWith(`${home}${path.sep}`)) await fsp.chmod(current, (mode & 0o7777) | 0o001);
      else throw new StepError(`services cannot reach their files under ${dir}: allow traversal of ${current} (chmod o+x) or move the engine's home`);
    }
  }
}

/** What this host can do, probed once per process (the engine's handshake and its runtime both ask). */
let probed: Promise<SandboxHost> | null = null;
export function hostSandbox(home: string): Promise<SandboxHost> {
  probed ??= detectSandbox({
    probeUser: { uid: 65534, gid: 65534 },
    extraReadonly: (process.env.SLIPWAY_SANDBOX_READONLY ?? "").split(":").filter((dir) => dir !== ""),
  }).then((host) => (host.kind === "bubblewrap" && host.setpriv ? unreachableHome(home).then((reason) => (reason ? { kind: "none", reason } : host)) : host));
  return probed;
}

/**
 * Services reach their directories under the engine's home as their own users: a directory
 * above the home that others cannot pass through (a home under /root) keeps them out, so the
 * host cannot sandbox with that home. Said at start, not at the first deploy.
 */
async function unreachableHome(home: string): Promise<string | null> {
  for (let dir = path.dirname(path.resolve(home)); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const { mode } = await fsp.stat(dir);
    if ((mode & 0o001) === 0) return `services cannot reach the engine's home ${home}: allow traversal of ${dir} (chmod o+x) or move the home`;
  }
  return null;
}

/** The handshake's view of a host: how services are isolated there, and why not when they are not. */
export function describeSandbox(host: SandboxHost): { sandbox: "bubblewrap" | "none"; serviceUsers: boolean; sandboxProblem?: string } {
  return host.kind === "bubblewrap"
    ? { sandbox: "bubblewrap", serviceUsers: host.setpriv !== null }
    : { sandbox: "none", serviceUsers: false, sandboxProblem: host.reason };
}

/** Where this host keeps its service uid claims (engine/runtime/local/sandbox/service-users.ts). */
export function defaultClaimsDir(): string {
  return (
    process.env.SLIPWAY_SERVICE_USERS_DIR ??
    (process.getuid?.() === 0 ? "/var/lib/slipway/service-users" : path.join(fs.realpathSync("/tmp"), "slipway-service-users"))
  );
}
