import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { SerialQueues } from "../../serial";
import { SERVICE_UID_BASE } from "./service-users";

/**
 * The loopback fence (issue 13): a sandboxed service shares the host's network, so it could
 * connect to every service the host keeps on 127.0.0.1 or ::1 (the control plane's database,
 * another environment's databases, the router, the engine's own ports). Each service runs as a
 * uid of its own (service-users.ts), so the kernel's owner match can cut that uid off loopback:
 * new TCP connections and UDP (any protocol but TCP) flows it opens towards loopback are
 * rejected, but for the ports it is allowed (its environment's databases) and the loopback DNS
 * resolvers the host names in /etc/resolv.conf (systemd-resolved's 127.0.0.53), without which
 * its outbound network would not resolve names.
 *
 * Only NEW flows from that uid are matched, and TCP only on a bare SYN: replies on connections
 * others open to the service (the router, the engine's health checks) pass, as does every packet
 * of every other process on the host. The rules live in one chain of the engine's own, jumped to
 * from OUTPUT for packets leaving by `lo`; each service's rules carry a comment naming it, and are
 * replaced in one iptables-restore transaction (https://www.netfilter.org/documentation/).
 */
export const FENCE_CHAIN = "SLIPWAY-LOOPBACK";

/** One address family's tools and what loopback is there. */
type Family = { name: "IPv4" | "IPv6"; iptables: string; restore: string; loopback: string; isLoopback: (address: string) => boolean };
export type FenceHost = { kind: "iptables"; families: Family[] } | { kind: "none"; reason: string };
export type IptablesHost = Extract<FenceHost, { kind: "iptables" }>;

/** What a fenced service may still reach on loopback: TCP `ports`, as `uid`. */
export type Fence = { uid: number; ports: number[] };

/** The comment that names a service's rules; service ids are UUIDs, so it needs no quoting. */
export function fenceTag(serviceId: string): string {
  if (!/^[A-Za-z0-9-]+$/.test(serviceId)) throw new Error(`not a service id: ${serviceId}`);
  return `slipway-service:${serviceId}`;
}

/**
 * One change of the chain at a time in this process: a change reads the chain, then deletes
 * rules by what it read, which a concurrent change of the same rules would make fail.
 */
const changes = new SerialQueues();

/** Puts the service's fence in place, replacing whatever rules it (or an earlier owner of its uid) had, in one transaction per family. */
export function applyFence(host: IptablesHost, serviceId: string, fence: Fence): Promise<void> {
  const tag = fenceTag(serviceId);
  return changes.run(FENCE_CHAIN, async () => {
    const resolvers = loopbackResolvers();
    for (const family of host.families) {
      await ensureChain(family);
      await replaceRules(family, tag, fence.uid, rulesOf(family, tag, fence, resolvers.filter(family.isLoopback)));
    }
  });
}

/** Removes the service's rules (and any left for its uid); the chain itself stays, empty it matches nothing. */
export function removeFence(host: IptablesHost, serviceId: string, uid: number | null): Promise<void> {
  const tag = fenceTag(serviceId);
  return changes.run(FENCE_CHAIN, async () => {
    for (const family of host.families) await replaceRules(family, tag, uid, []);
  });
}

/** The rules of the chain (`-A SLIPWAY-LOOPBACK …` lines as iptables -S prints them), for one family. */
async function chainRules(family: Family): Promise<string[]> {
  const { stdout } = await iptables(family.iptables, ["-w", "-t", "filter", "-S"]);
  return stdout.split("\n").filter((line) => line.startsWith(`-A ${FENCE_CHAIN} `));
}

function rulesOf(family: Family, tag: string, fence: Fence, resolvers: string[]): string[] {
  const own = `-m owner --uid-owner ${fence.uid}`;
  const comment = `-m comment --comment ${tag}`;
  const allow = (address: string, protocol: "tcp" | "udp", port: number) =>
    `-d ${address} -p ${protocol} ${own} -m ${protocol} --dport ${port} ${comment} -j RETURN`;
  return [
    ...[...new Set(fence.ports)].sort((a, b) => a - b).map((port) => allow(family.loopback, "tcp", port)),
    ...resolvers.flatMap((address) => [allow(address, "udp", 53), allow(address, "tcp", 53)]),
    // A bare SYN: a reply, or a packet of a connection conntrack picked up midway, is never NEW here.
    `-d ${family.loopback} -p tcp ${own} -m tcp --syn -m conntrack --ctstate NEW ${comment} -j REJECT --reject-with tcp-reset`,
    // UDP and the rest (SCTP, ICMP echo): refused, so the sender hears at once rather than timing out.
    `-d ${family.loopback} ! -p tcp ${own} -m conntrack --ctstate NEW ${comment} -j REJECT`,
  ];
}

/** Deletes the rules of the service or its uid and appends `rules`, all in one iptables-restore transaction. */
async function replaceRules(family: Family, tag: string, uid: number | null, rules: string[]): Promise<void> {
  const stale = (await chainRules(family)).filter((line) => {
    const words = line.split(/\s+/).map((word) => word.replace(/^"|"$/g, ""));
    const after = (flag: string) => words[words.indexOf(flag) + 1];
    return after("--comment") === tag || (uid !== null && words.includes("--uid-owner") && after("--uid-owner") === String(uid));
  });
  const lines = [...stale.map((line) => `-D${line.slice(2)}`), ...rules.map((rule) => `-A ${FENCE_CHAIN} ${rule}`)];
  if (lines.length === 0) return;
  await iptables(family.restore, ["-w", "--noflush"], `*filter\n${lines.join("\n")}\nCOMMIT\n`);
}

/**
 * The chain and its jump, made on first use. The jump goes first in OUTPUT: an earlier
 * `-o lo -j ACCEPT` (common in host firewalls) would otherwise let everything past it. Two
 * engines racing may insert it twice, which changes nothing (the chain only RETURNs or rejects).
 */
async function ensureChain(family: Family): Promise<void> {
  if (!(await chainExists(family))) {
    // Another engine may make it meanwhile: only a chain still missing afterwards is an error.
    await iptables(family.iptables, ["-w", "-t", "filter", "-N", FENCE_CHAIN]).catch(async (error: unknown) => {
      if (!(await chainExists(family))) throw error;
    });
  }
  const jump = ["-o", "lo", "-j", FENCE_CHAIN];
  const present = await iptables(family.iptables, ["-w", "-t", "filter", "-C", "OUTPUT", ...jump]).then(
    () => true,
    () => false,
  );
  if (!present) await iptables(family.iptables, ["-w", "-t", "filter", "-I", "OUTPUT", "1", ...jump]);
}

async function chainExists(family: Family): Promise<boolean> {
  const { stdout } = await iptables(family.iptables, ["-w", "-t", "filter", "-S"]);
  return stdout.split("\n").includes(`-N ${FENCE_CHAIN}`);
}

/** Nameservers of /etc/resolv.conf that are loopback addresses (systemd-resolved, dnsmasq): a fenced service still needs them. */
function loopbackResolvers(): string[] {
  let text = "";
  try {
    text = fs.readFileSync("/etc/resolv.conf", "utf8");
  } catch {
    return [];
  }
  return text.split("\n").flatMap((line) => {
    const match = /^\s*nameserver\s+(\S+)/.exec(line);
    return match && (isLoopback4(match[1]!) || match[1] === "::1") ? [match[1]!] : [];
  });
}

function isLoopback4(address: string): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address);
}

async function iptables(command: string, args: string[], input?: string): Promise<{ stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { timeout: 15_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${path.basename(command)} ${args.join(" ")}: ${(stderr || error.message).trim().split("\n").at(-1)}`));
      else resolve({ stdout });
    });
    // A command that reads no input may exit before its (empty) stdin is closed: its exit code says what happened.
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(input ?? "");
  });
}

/** The first executable `name` on PATH or in the sbin directories (root's PATH may lack them under a service manager). */
function findTool(name: string): string | null {
  const dirs = [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/sbin"].filter((dir) => dir !== "");
  for (const dir of dirs) {
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

/** Whether the host has ::1 (a host with IPv6 disabled has nothing to fence there). */
function hasIpv6Loopback(): boolean {
  try {
    return fs
      .readFileSync("/proc/net/if_inet6", "utf8")
      .split("\n")
      .some((line) => line.startsWith("00000000000000000000000000000001 "));
  } catch {
    return false;
  }
}

/**
 * Whether this host can fence: the engine is root, iptables (and ip6tables where the host has
 * ::1) is installed, and the kernel takes a rule with every match the fence uses. The probe's
 * rule goes into a scratch chain nothing jumps to, for a uid no service is given, and is removed.
 */
export async function detectLoopbackFence(): Promise<FenceHost> {
  if (process.getuid?.() !== 0) return { kind: "none", reason: "the engine does not run as root, so it cannot set firewall rules" };
  const wanted: Array<Omit<Family, "iptables" | "restore"> & { tools: [string, string] }> = [
    { name: "IPv4", tools: ["iptables", "iptables-restore"], loopback: "127.0.0.0/8", isLoopback: isLoopback4 },
  ];
  if (hasIpv6Loopback()) wanted.push({ name: "IPv6", tools: ["ip6tables", "ip6tables-restore"], loopback: "::1/128", isLoopback: (a) => a === "::1" });
  const families: Family[] = [];
  for (const { tools, ...rest } of wanted) {
    const [iptablesPath, restorePath] = tools.map(findTool);
    if (!iptablesPath || !restorePath) return { kind: "none", reason: `${tools.join(" and ")} are not installed: apt-get install iptables` };
    families.push({ ...rest, iptables: iptablesPath, restore: restorePath });
  }
  for (const family of families) {
    const problem = await probe(family);
    if (problem) return { kind: "none", reason: `${family.name} firewall rules cannot be set on this host: ${problem}` };
  }
  return { kind: "iptables", families };
}

async function probe(family: Family): Promise<string | null> {
  const chain = `SLIPWAY-PROBE-${process.pid}`;
  const table = ["-w", "-t", "filter"];
  try {
    // Every deployment reads the table (to find a service's rules): a table iptables cannot list (nft rules it does not know) rules the fence out.
    await chainRules(family);
    await removeScratch(family, chain);
    await iptables(family.iptables, [...table, "-N", chain]);
  } catch (error) {
    return (error as Error).message;
  }
  try {
    const rules = rulesOf(family, fenceTag("probe"), { uid: SERVICE_UID_BASE - 1, ports: [1] }, []);
    await iptables(family.restore, ["-w", "--noflush"], `*filter\n${rules.map((rule) => `-A ${chain} ${rule}`).join("\n")}\nCOMMIT\n`);
    return null;
  } catch (error) {
    return (error as Error).message;
  } finally {
    await removeScratch(family, chain);
  }
}

/** Removes a probe's scratch chain, if there is one (an engine killed mid-probe may have left it, to the next process with its pid). */
async function removeScratch(family: Family, chain: string): Promise<void> {
  await iptables(family.iptables, ["-w", "-t", "filter", "-F", chain]).catch(() => undefined);
  await iptables(family.iptables, ["-w", "-t", "filter", "-X", chain]).catch(() => undefined);
}

/** What this host can fence, probed once per process (the engine's handshake and its runtime both ask). */
let probed: Promise<FenceHost> | null = null;
export function hostLoopbackFence(): Promise<FenceHost> {
  probed ??= detectLoopbackFence();
  return probed;
}
