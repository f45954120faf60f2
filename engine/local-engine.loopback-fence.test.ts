/**
 * The loopback fence (issue 13) on a real host: with the cluster's isolateLoopback, an app's build
 * and its running release cannot open connections to servers on the host's loopback, but still
 * reach their environment's database and serve through the router; the kernel rules behind it
 * name only the services' uids, go away with the service, and come back when an engine starts.
 */
import { execFileSync } from "node:child_process";
import dgram from "node:dgram";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { database, engineHome, fixture, service, task } from "../test/engine-harness";
import { type GitServer, startGitServer } from "../test/git-server";
import { skipWithout } from "../test/support/requirements";
import { testToolchains } from "../test/support/toolchains";
import { createLocalEngine, type Engine } from "./core";
import type { DatabaseServiceSpec, ServiceSpec } from "./protocol";
import { availableDatabases } from "./runtime/local/databases/driver";
import { layout } from "./runtime/local/layout";
import { detectLoopbackFence, FENCE_CHAIN, fenceTag, removeFence } from "./runtime/local/sandbox/loopback-fence";
import { detectSandbox } from "./runtime/local/sandbox/sandbox";
import { SERVICE_UID_BASE } from "./runtime/local/sandbox/service-users";

const nodeModules = fileURLToPath(new URL("../node_modules", import.meta.url));
// The app's database client (pg) comes from the platform's packages, shown read-only to apps.
const sandbox = await detectSandbox({ probeUser: { uid: 65534, gid: 65534 }, extraReadonly: [nodeModules] });
const fenceHost = await detectLoopbackFence();
const postgres = (await availableDatabases()).includes("postgresql");
const ipv6 = fenceHost.kind === "iptables" && fenceHost.families.some((family) => family.name === "IPv6");

const missing =
  sandbox.kind === "none"
    ? `a sandbox (${sandbox.reason})`
    : !sandbox.setpriv
      ? "root (services run as users of their own)"
      : fenceHost.kind === "none"
        ? `a loopback fence (${fenceHost.reason})`
        : !postgres
          ? "PostgreSQL's binaries"
          : null;

type Reached = Record<string, { ok: boolean; detail: string }>;

/** The rules of the fence's chain as `iptables -S` (or ip6tables) prints them. */
function chain(tool: "iptables" | "ip6tables" = "iptables"): string[] {
  return execFileSync(tool, ["-w", "-S"], { encoding: "utf8" })
    .split("\n")
    .filter((line) => line.startsWith(`-A ${FENCE_CHAIN} `));
}
const rulesOf = (serviceId: string, tool: "iptables" | "ip6tables" = "iptables") => chain(tool).filter((line) => line.includes(fenceTag(serviceId)));

describe.skipIf(skipWithout(missing))("local engine: the loopback fence", () => {
  let env: Awaited<ReturnType<typeof engineHome>>;
  let engine: Engine;
  let git: GitServer;
  const servers: Array<{ close(): unknown }> = [];
  const serviceIds: string[] = [];
  let db: DatabaseServiceSpec;
  let app: ReturnType<typeof service>;
  let targets: Array<{ name: string; protocol: "tcp" | "udp"; host: string; port: number }>;

  const deploy = async (services: ServiceSpec[], isolateLoopback: boolean) => {
    const t = { ...task("DEPLOY", services), isolateLoopback };
    serviceIds.push(...services.map((s) => s.id));
    await engine.execute(t);
    const final = env.final(t.deploymentId);
    expect(final?.status, JSON.stringify(final)).toBe("succeeded");
    return t;
  };
  const reached = async (urlPath: string) => {
    const response = await env.get(`${app.name}-test.localhost`, urlPath);
    expect(response.status).toBe(200);
    return JSON.parse(response.body) as Reached & { ok?: boolean; detail?: string };
  };
  const buildReached = (deploymentId: string): Reached => {
    const line = env.lines.find((l) => l.stream.kind === "deployment" && l.stream.deploymentId === deploymentId && l.text.startsWith("REACH "));
    return JSON.parse(line!.text.slice("REACH ".length)) as Reached;
  };
  const uidOf = (serviceId: string) =>
    (JSON.parse(fs.readFileSync(path.join(layout(env.home).serviceDir(serviceId), "user.json"), "utf8")) as { uid: number }).uid;

  /** Servers only the test should reach: TCP on 127.0.0.1 (and ::1 where the host has it), UDP on 127.0.0.1. */
  async function startServers() {
    const tcp = async (host: string) => {
      const server = net.createServer((socket) => socket.end("pong"));
      await new Promise<void>((resolve) => server.listen(0, host, resolve));
      servers.push(server);
      return (server.address() as net.AddressInfo).port;
    };
    const udp = dgram.createSocket("udp4");
    udp.on("message", (message, from) => udp.send(`pong ${String(message)}`, from.port, from.address));
    await new Promise<void>((resolve) => udp.bind(0, "127.0.0.1", resolve));
    servers.push(udp);
    const port = await tcp("127.0.0.1");
    return [
      { name: "tcp 127.0.0.1", protocol: "tcp" as const, host: "127.0.0.1", port },
      // Other spellings of the same server: connecting to 0.0.0.0 reaches loopback, as does an IPv4-mapped IPv6 address.
      { name: "tcp 0.0.0.0", protocol: "tcp" as const, host: "0.0.0.0", port },
      { name: "udp 127.0.0.1", protocol: "udp" as const, host: "127.0.0.1", port: udp.address().port },
      ...(ipv6
        ? [
            { name: "tcp ::1", protocol: "tcp" as const, host: "::1", port: await tcp("::1") },
            { name: "tcp ::ffff:127.0.0.1", protocol: "tcp" as const, host: "::ffff:127.0.0.1", port },
          ]
        : []),
    ];
  }

  beforeAll(async () => {
    env = await engineHome({ drainTimeoutMs: 1_000, stopGraceMs: 3_000, sandbox: Promise.resolve(sandbox) });
    engine = env.newEngine();
    await engine.start();
    targets = await startServers();
    git = await startGitServer();
    await git.createRepo("prober", fixture("loopback-prober"));
    db = await database("postgresql", { name: "fenced-db" });
    const { user, password, port, database: name } = db.config.connection;
    app = service({
      name: "prober",
      config: { git: { url: git.url("prober") }, healthCheckPath: "/health" },
      variables: [
        { key: "REACH_TARGETS", value: JSON.stringify(targets), secret: false },
        { key: "DATABASE_URL", value: `postgres://${user}:${password}@127.0.0.1:${port}/${name}`, secret: true },
        { key: "NODE_PATH", value: nodeModules, secret: false },
      ],
    });
  }, 120_000);

  afterAll(async () => {
    await env?.cleanup();
    // Whatever a failed test left of these services' rules goes: no rule outlives its test.
    if (fenceHost.kind === "iptables") for (const serviceId of serviceIds) await removeFence(fenceHost, serviceId, null);
    await git?.close();
    for (const server of servers) server.close();
  });

  it("without the flag, the app and its build reach the test's servers on loopback", async () => {
    const deployed = await deploy([db, app], false);
    for (const [name, result] of Object.entries(buildReached(deployed.deploymentId))) expect(result, name).toMatchObject({ ok: true });
    const running = await reached("/reach");
    expect(Object.keys(running).sort()).toEqual(targets.map((target) => target.name).sort());
    for (const [name, result] of Object.entries(running)) expect(result, name).toMatchObject({ ok: true, detail: expect.stringContaining("pong") });
    expect(rulesOf(app.id)).toEqual([]);
  });

  it("with it, neither the build nor the app reaches them, yet the app queries its database, passes its health check and serves", async () => {
    const deployed = await deploy([db, app], true);
    const events = env.eventsOf(deployed.deploymentId);
    expect(events.some((event) => event.serviceId === app.id && event.step === "health_check" && event.status === "succeeded")).toBe(true);
    expect(env.lines.some((line) => line.text === `Loopback: fenced off, but for port ${db.config.connection.port} (its environment's databases)`)).toBe(true);
    const refused = (results: Reached) => Object.fromEntries(Object.entries(results).map(([name, result]) => [name, result.ok]));
    const none = Object.fromEntries(targets.map((target) => [target.name, false]));
    expect(refused(buildReached(deployed.deploymentId))).toEqual(none);
    const running = await reached("/reach");
    expect(refused(running)).toEqual(none);
    // Refused at once by the kernel, not timed out.
    expect(running["tcp 127.0.0.1"]?.detail).toBe("ECONNREFUSED");
    expect(await reached("/db")).toEqual({ ok: true, detail: db.config.connection.user });
    // The test's own process (another uid) still reaches the same servers.
    const port = targets[0]!.port;
    const said = await new Promise<string>((resolve, reject) => {
      let text = "";
      net
        .connect({ host: "127.0.0.1", port })
        .on("data", (chunk) => (text += String(chunk)))
        .on("end", () => resolve(text))
        .on("error", reject);
    });
    expect(said).toBe("pong");
  });

  it("matches only the services' uids: every rule of the chain names one, the app's allows its database's port, the database's none", () => {
    const appUid = uidOf(app.id);
    const dbUid = uidOf(db.id);
    const tools = ipv6 ? (["iptables", "ip6tables"] as const) : (["iptables"] as const);
    for (const tool of tools) {
      const jumps = execFileSync(tool, ["-w", "-S", "OUTPUT"], { encoding: "utf8" })
        .split("\n")
        .filter((line) => line.includes(`-j ${FENCE_CHAIN}`));
      expect(jumps.length, tool).toBeGreaterThan(0);
      for (const jump of jumps) expect(jump).toBe(`-A OUTPUT -o lo -j ${FENCE_CHAIN}`);
      // Other engines' services may share the chain: every rule still names a service uid.
      for (const line of chain(tool)) {
        const uid = Number(/--uid-owner (\d+)/.exec(line)?.[1]);
        expect(uid, line).toBeGreaterThanOrEqual(SERVICE_UID_BASE);
      }
      const appRules = rulesOf(app.id, tool);
      expect(appRules.every((line) => line.includes(`--uid-owner ${appUid} `))).toBe(true);
      // Besides the host's loopback DNS resolvers, if it has any (port 53), only its database's port.
      const allowed = appRules.filter((line) => line.endsWith("-j RETURN")).map((line) => /--dport (\d+)/.exec(line)?.[1]);
      expect(allowed.filter((port) => port !== "53")).toEqual([String(db.config.connection.port)]);
      expect(appRules.filter((line) => line.includes("-j REJECT")).length).toBe(2);
      const dbRules = rulesOf(db.id, tool);
      expect(dbRules.every((line) => line.includes(`--uid-owner ${dbUid} `))).toBe(true);
      expect(dbRules.filter((line) => line.includes("--dport") && !line.includes("--dport 53"))).toEqual([]);
      expect(dbRules.filter((line) => line.includes("-j REJECT")).length).toBe(2);
    }
    const fenceFile = path.join(layout(env.home).serviceDir(app.id), "fence.json");
    expect(fs.statSync(fenceFile).mode & 0o777).toBe(0o600);
    expect(JSON.parse(fs.readFileSync(fenceFile, "utf8"))).toEqual({ uid: appUid, ports: [db.config.connection.port] });
  });

  it("a deployment of the app alone still lets it reach its environment's database", async () => {
    await deploy([app], true);
    expect(await reached("/db")).toEqual({ ok: true, detail: db.config.connection.user });
    expect((await reached("/reach"))["tcp 127.0.0.1"]).toEqual({ ok: false, detail: "ECONNREFUSED" });
  });

  it("puts the rules back when an engine starts (after a reboot emptied the kernel's tables), or runs nothing of the service where it cannot", async () => {
    await engine.shutdown();
    const before = rulesOf(app.id);
    if (fenceHost.kind !== "iptables") throw new Error("unreachable");
    for (const serviceId of [app.id, db.id]) await removeFence(fenceHost, serviceId, null);
    expect(rulesOf(app.id)).toEqual([]);
    // The app kept running meanwhile, unfenced: it reaches the test's server again.
    expect((await reached("/reach"))["tcp 127.0.0.1"]?.ok).toBe(true);
    // An engine that cannot put the fence back runs nothing more of the service (here a shell).
    const cannot = createLocalEngine({
      home: env.home,
      routerPort: env.routerPort,
      reporter: env.reporter,
      tuning: { sandbox: Promise.resolve(sandbox), loopbackFence: Promise.resolve({ kind: "none", reason: "iptables is gone" }) },
      toolchains: testToolchains,
    });
    await cannot.start();
    await expect(cannot.exec!(app.id, ["true"], { tty: false })).rejects.toThrow(
      "this service is fenced off the host's loopback, which the engine could not put back: iptables is gone",
    );
    await cannot.shutdown();
    engine = env.newEngine();
    await engine.start();
    expect(rulesOf(app.id)).toEqual(before);
    expect(rulesOf(db.id).length).toBeGreaterThan(0);
    expect((await reached("/reach"))["tcp 127.0.0.1"]).toEqual({ ok: false, detail: "ECONNREFUSED" });
    expect(await reached("/db")).toEqual({ ok: true, detail: db.config.connection.user });
  });

  it("takes the rules away with the service", async () => {
    const uids = [uidOf(app.id), uidOf(db.id)];
    const deleted = { ...task("DELETE", [app, db]), isolateLoopback: true };
    await engine.execute(deleted);
    expect(env.final(deleted.deploymentId)?.status).toBe("succeeded");
    for (const tool of ipv6 ? (["iptables", "ip6tables"] as const) : (["iptables"] as const)) {
      const left = chain(tool).filter(
        (line) => [app.id, db.id].some((id) => line.includes(fenceTag(id))) || uids.some((uid) => line.includes(`--uid-owner ${uid} `)),
      );
      expect(left, tool).toEqual([]);
    }
  });
});

describe("local engine: a cluster that asks for the loopback fence on a host that cannot", () => {
  let git: GitServer;
  let env: Awaited<ReturnType<typeof engineHome>>;

  beforeAll(async () => {
    git = await startGitServer();
    await git.createRepo("prober", fixture("loopback-prober"));
  });

  afterAll(async () => {
    await env?.cleanup();
    await git?.close();
  });

  it("refuses the deployment, saying why, rather than running the app unfenced (a trusted cluster without a sandbox)", async () => {
    env = await engineHome({
      drainTimeoutMs: 500,
      stopGraceMs: 2_000,
      sandbox: Promise.resolve({ kind: "none", reason: "bubblewrap (bwrap) is not installed" }),
    });
    const engine = env.newEngine();
    await engine.start();
    const app = service({ name: "app", config: { git: { url: git.url("prober") } } });
    const deploy = { ...task("DEPLOY", [app]), trusted: true, isolateLoopback: true };
    await engine.execute(deploy);
    const final = env.final(deploy.deploymentId);
    expect(final?.status).toBe("failed");
    expect(final?.message).toMatch(/build failed: this cluster fences services off the host's loopback, which this engine cannot do \(bubblewrap/);
    expect(env.lines.some((line) => line.text.startsWith("REACH "))).toBe(false);
    expect((await env.get("app-test.localhost")).status).toBe(503);
  });

  it.skipIf(sandbox.kind === "none" || !sandbox.setpriv)("refuses it where iptables is missing, though apps are sandboxed as users of their own", async () => {
    await env?.cleanup();
    env = await engineHome({
      drainTimeoutMs: 500,
      stopGraceMs: 2_000,
      sandbox: Promise.resolve(sandbox),
      loopbackFence: Promise.resolve({ kind: "none", reason: "iptables and iptables-restore are not installed: apt-get install iptables" }),
    });
    const engine = env.newEngine();
    await engine.start();
    const app = service({ name: "app", config: { git: { url: git.url("prober") } } });
    const deploy = { ...task("DEPLOY", [app]), isolateLoopback: true };
    await engine.execute(deploy);
    const final = env.final(deploy.deploymentId);
    expect(final?.status).toBe("failed");
    expect(final?.message).toMatch(/which this engine cannot do \(iptables and iptables-restore are not installed/);
    expect(env.lines.some((line) => line.text.startsWith("REACH "))).toBe(false);
  });
});
