import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { z } from "zod";

/**
 * One unprivileged OS user per service, so that no service can read another's files, signal its
 * processes or read its /proc (the kernel checks the uid). Users are numbers, not /etc/passwd
 * entries: the sandbox shows each service a passwd file of its own, and a host's user database
 * is left as it was.
 *
 * A uid is claimed host-wide by creating a file named after it in the claims directory with
 * O_EXCL (atomic: two engines on one host never hold one uid), stays the service's for as long as
 * it exists (recorded in the service's directory), and is freed when the service's files go.
 * A claim whose service directory no longer exists (an engine home deleted with its services)
 * is stale and taken over.
 */
export type ServiceUser = { uid: number; gid: number };

/** Far above the uids that distributions, LDAP and the usual subordinate ranges (/etc/subuid) hand out. */
export const SERVICE_UID_BASE = 1_900_000_000;
export const SERVICE_UID_COUNT = 1_000_000;

const claim = z.object({ serviceDir: z.string(), serviceId: z.string() });
const record = z.object({ uid: z.number().int() });

export class ServiceUsers {
  constructor(
    private readonly options: {
      /** Host-wide: /var/lib/slipway/service-users for an engine running as root. */
      claimsDir: string;
      serviceDir: (serviceId: string) => string;
    },
  ) {
    fs.mkdirSync(options.claimsDir, { recursive: true, mode: 0o700 });
  }

  /** The service's user, claimed at its first call and the same at every later one. */
  userOf(serviceId: string): ServiceUser {
    const serviceDir = this.options.serviceDir(serviceId);
    const recorded = this.recorded(serviceDir);
    if (recorded !== null && this.holds(recorded, serviceId, serviceDir)) return { uid: recorded, gid: recorded };
    const uid = this.claim(serviceId, serviceDir);
    fs.mkdirSync(serviceDir, { recursive: true });
    fs.writeFileSync(path.join(serviceDir, "user.json"), JSON.stringify({ uid }), { mode: 0o600 });
    return { uid, gid: uid };
  }

  /** Gives the service's uid back; its files must be gone first (a later owner of the uid would own them). */
  free(serviceId: string): void {
    const serviceDir = this.options.serviceDir(serviceId);
    const uid = this.recorded(serviceDir);
    if (uid !== null && this.holds(uid, serviceId, serviceDir)) fs.rmSync(this.claimFile(uid), { force: true });
  }

  private claim(serviceId: string, serviceDir: string): number {
    // Start where the service's name hashes to: few collisions to walk past on a busy host.
    const start = createHash("sha256").update(serviceDir).digest().readUInt32BE(0) % SERVICE_UID_COUNT;
    for (let step = 0; step < SERVICE_UID_COUNT; step++) {
      const uid = SERVICE_UID_BASE + ((start + step) % SERVICE_UID_COUNT);
      const file = this.claimFile(uid);
      if (this.take(file, serviceId, serviceDir)) return uid;
      if (this.isStale(file)) {
        fs.rmSync(file, { force: true });
        if (this.take(file, serviceId, serviceDir)) return uid;
      }
    }
    throw new Error("no free service uid is left on this host");
  }

  private take(file: string, serviceId: string, serviceDir: string): boolean {
    try {
      fs.writeFileSync(file, JSON.stringify({ serviceDir, serviceId }), { flag: "wx", mode: 0o600 });
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw error;
    }
  }

  private isStale(file: string): boolean {
    const owner = this.readClaim(file);
    return owner !== null && !fs.existsSync(owner.serviceDir);
  }

  private holds(uid: number, serviceId: string, serviceDir: string): boolean {
    const owner = this.readClaim(this.claimFile(uid));
    return owner?.serviceId === serviceId && owner.serviceDir === serviceDir;
  }

  private readClaim(file: string): z.infer<typeof claim> | null {
    try {
      return claim.parse(JSON.parse(fs.readFileSync(file, "utf8")));
    } catch {
      return null;
    }
  }

  private recorded(serviceDir: string): number | null {
    try {
      return record.parse(JSON.parse(fs.readFileSync(path.join(serviceDir, "user.json"), "utf8"))).uid;
    } catch {
      return null;
    }
  }

  private claimFile(uid: number): string {
    return path.join(this.options.claimsDir, String(uid));
  }
}
