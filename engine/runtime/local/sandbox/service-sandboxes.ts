import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import type pino from "pino";
import { z } from "zod";
import { StepError } from "../../runtime";
import { readJson, writeJsonAtomic } from "../../shared/files";
import { handOver, openForTraversal } from "../database-user";
import type { Layout } from "../layout";
import { applyFence, type Fence, type FenceHost, removeFence } from "./loopback-fence";
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
  private fenceHost: FenceHost = { kind: "none", reason: "the engine has not looked yet" };
  /** Uids whose recorded loopback fence could not be put back as the engine started: nothing of theirs may run. */
  private readonly unfenced = new Map<number, string>();

  constructor(
    private readonly options: {
      home: string;
      paths: Layout;
      claimsDir: string;
      host: Promise<SandboxHost>;
      /** What this host can fence off loopback (sandbox/loopback-fence.ts); asked only where services have users of their own. */
      fence: () => Promise<FenceHost>;
      logger: pino.Logger;
    },
  ) {}

  /** Learns what this host can do, and puts back the loopback fences recorded; called once as the runtime starts, before anything runs. */
  async start(): Promise<SandboxHost> {
    this.host = await this.options.host;
    const { claimsDir, paths } = this.options;
    this.users = this.host.kind === "bubblewrap" && this.host.setpriv ? new ServiceUsers({ claimsDir, serviceDir: paths.serviceDir }) : null;
    // The owner match needs a uid per service: without one, a fence would cut off the engine itself.
    this.fenceHost = this.users
      ? await this.options.fence()
      : { kind: "none", reason: this.host.kind === "none" ? this.host.reason : "services do not run as users of their own (the engine is not root)" };
    await this.restoreFences();
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
    const unfenced = spec.user && this.unfenced.get(spec.user.uid);
    if (unfenced) throw new StepError(`this service is fenced off the host's loopback, which the engine could not put back: ${unfenced}`);
    return sandboxArgv(this.host, spec, argv, options);
  }

  /** Gives a tree the engine wrote (a checkout) to the service's user, so its build can write there and nothing else can read it. */
  async handOver(dir: string, jail: ServiceJail | null): Promise<void> {
    const user = jail?.user;
    if (!user) return;
    await handOver(dir, user);
    await fsp.chmod(dir, 0o700);
  }

  /**
   * Fences the service's user off the host's loopback but for the TCP ports `allowed`, or takes
   * its fence down (`allowed` null: the cluster does not ask for one). Called before anything of
   * a deployment runs as that user. Fail closed: a host that cannot fence refuses the deployment.
   * The fence is recorded first (fence.json), so that an engine that starts later, or after a
   * reboot emptied the kernel's tables, puts it back before the service runs again.
   * Returns what to tell the deployment's log.
   */
  async fence(serviceId: string, jail: ServiceJail | null, allowed: number[] | null): Promise<string | null> {
    const host = this.fenceHost;
    const file = this.fenceFile(serviceId);
    const uid = jail?.user?.uid ?? null;
    if (allowed === null) {
      // Rules left for its uid by an earlier owner go too (an engine home removed without deleting its services).
      if (host.kind === "iptables" && uid !== null) await removeFence(host, serviceId, uid);
      await fsp.rm(file, { force: true });
      if (uid !== null) this.unfenced.delete(uid);
      return null;
    }
    if (host.kind === "none" || uid === null) {
      throw new StepError(
        `this cluster fences services off the host's loopback, which this engine cannot do (${host.kind === "none" ? host.reason : "the service has no user of its own"})`,
      );
    }
    const fence: Fence = { uid, ports: [...new Set(allowed)].sort((a, b) => a - b) };
    await writeJsonAtomic(file, fence, 0o600);
    await applyFence(host, serviceId, fence).catch((error: unknown) => {
      throw new StepError(`could not fence the service off the host's loopback: ${(error as Error).message}`);
    });
    this.unfenced.delete(uid);
    return `Loopback: fenced off${fence.ports.length > 0 ? `, but for port${fence.ports.length === 1 ? "" : "s"} ${fence.ports.join(", ")} (its environment's databases)` : " entirely"}`;
  }

  /** Takes the service's fence down with its files (its uid may be someone else's next). */
  async unfence(serviceId: string): Promise<void> {
    // A fence.json that cannot be read still lets the service go: its rules are found by its name.
    const recorded = await this.recordedFence(serviceId).catch(() => null);
    if (this.fenceHost.kind === "iptables") await removeFence(this.fenceHost, serviceId, recorded?.uid ?? null);
    if (recorded) this.unfenced.delete(recorded.uid);
  }

  /**
   * The fences recorded under the engine's home, put back as the engine starts. One that cannot
   * be (iptables removed since) is logged, and its service refused to run (wrap) until deployed again.
   */
  private async restoreFences(): Promise<void> {
    const { paths, logger } = this.options;
    for (const serviceId of await fsp.readdir(paths.servicesDir).catch(() => [])) {
      const fence = await this.recordedFence(serviceId).catch(() => null);
      if (!fence) continue;
      const host = this.fenceHost;
      const problem =
        host.kind === "none"
          ? host.reason
          : await applyFence(host, serviceId, fence).then(
              () => null,
              (error: unknown) => (error as Error).message,
            );
      if (!problem) continue;
      this.unfenced.set(fence.uid, problem);
      logger.error({ serviceId, problem }, "could not fence a service off the host's loopback again: it will not run until it is deployed again");
    }
  }

  private recordedFence(serviceId: string): Promise<Fence | null> {
    return readJson(this.fenceFile(serviceId), fenceRecord);
  }

  private fenceFile(serviceId: string): string {
    return path.join(this.options.paths.serviceDir(serviceId), "fence.json");
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
    await openForTraversal(
      dir,
      this.options.home,
      (closed) => `services cannot reach their files under ${dir}: allow traversal of ${closed} (chmod o+x) or move the engine's home`,
    );
  }
}

const fenceRecord = z.object({ uid: z.number().int(), ports: z.array(z.number().int()) });

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

/** The handshake's view of the loopback fence: services can be fenced where they have users of their own and the host has iptables. */
export async function describeLoopbackFence(
  host: SandboxHost,
  fence: () => Promise<FenceHost>,
): Promise<{ loopbackFence: boolean; loopbackFenceProblem?: string }> {
  if (host.kind === "none") return { loopbackFence: false, loopbackFenceProblem: `services are not sandboxed: ${host.reason}` };
  if (!host.setpriv) return { loopbackFence: false, loopbackFenceProblem: "services do not run as users of their own (the engine is not root)" };
  const found = await fence();
  return found.kind === "iptables" ? { loopbackFence: true } : { loopbackFence: false, loopbackFenceProblem: found.reason };
}

/** Where this host keeps its service uid claims (engine/runtime/local/sandbox/service-users.ts). */
export function defaultClaimsDir(): string {
  return (
    process.env.SLIPWAY_SERVICE_USERS_DIR ??
    (process.getuid?.() === 0 ? "/var/lib/slipway/service-users" : path.join(fs.realpathSync("/tmp"), "slipway-service-users"))
  );
}
