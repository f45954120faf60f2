import { fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import getPort from "get-port";
import { createCaller } from "../../server/api/root";
import { killProcessesUnder } from "../../test/process-cleanup";
import { spawnControlPlaneProcess, type ControlPlaneProcess } from "../../test/support/control-plane-process";
import { startHaproxy } from "../../test/support/haproxy";
import { startBenchDatabase } from "../control-plane";
import { cpuOfTree, postmasterPid } from "../cpu";
import { percentile } from "../stats";
import type { FleetCommand, FleetReport } from "./engines-process";

export type FleetOptions = {
  engines: number;
  /** Deployments created per second across the fleet. */
  rate: number;
  /** How long deployments are created for. */
  seconds: number;
  /** Processes the engines are spread over. */
  processes: number;
  /** Deployments of the single-engine baseline, one at a time. */
  baselineRuns: number;
  /** The window, with every engine connected and nothing deployed, in which heartbeats are counted. */
  idleSeconds: number;
};

const wallClock = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Linux's USER_HZ, the unit of /proc/<pid>/stat's CPU times, is 100 on every architecture Node runs on. */
const TICK_MS = 10;

/** A process's resident memory (bytes) and CPU time used so far (ms), from /proc. */
async function usage(pid: number) {
  const status = await fs.readFile(`/proc/${pid}/status`, "utf8");
  const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)![1]);
  // Fields after the command name (which may hold spaces): utime and stime are fields 14 and 15.
  const stat = (await fs.readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]!.split(" ");
  return { rss: rssKb * 1024, cpuMs: (Number(stat[11]) + Number(stat[12])) * TICK_MS };
}

async function webUsage(webs: ControlPlaneProcess[]) {
  const each = await Promise.all(webs.map((web) => usage(web.child.pid!)));
  return { rss: each.reduce((sum, one) => sum + one.rss, 0), cpuMs: each.reduce((sum, one) => sum + one.cpuMs, 0) };
}

/**
 * The web processes' resident memory, as the median of five readings a second apart (a garbage
 * collection in between moves a single reading by tens of MiB), and the readings' spread: a
 * difference smaller than it is noise.
 */
async function settledRss(webs: ControlPlaneProcess[]) {
  const readings: number[] = [];
  for (let reading = 0; reading < 5; reading++) {
    if (reading > 0) await sleep(1_000);
    readings.push((await webUsage(webs)).rss);
  }
  return { median: percentile(readings, 50), spread: Math.max(...readings) - Math.min(...readings) };
}

/** The machine's busy CPU time so far (ms, every core), from /proc/stat: what the groups below do not account for is the rest. */
async function machineBusyMs() {
  const [, ...times] = (await fs.readFile("/proc/stat", "utf8")).split("\n")[0]!.split(/\s+/);
  // user nice system idle iowait irq softirq steal: everything but idle and iowait.
  const [user, nice, system, , , irq, softirq, steal] = times.map(Number);
  return (user! + nice! + system! + irq! + softirq! + steal!) * TICK_MS;
}

/** CPU time so far (ms) of each part of the run: process trees (bench/cpu.ts), this process, the machine. */
type CpuGroups = Record<"web" | "workers" | "postgres" | "engines" | "haproxy" | "api", () => Promise<number>>;

async function cpuSplit(groups: CpuGroups) {
  const names = Object.keys(groups) as (keyof CpuGroups)[];
  const values = await Promise.all(names.map((name) => groups[name]()));
  return { machine: await machineBusyMs(), ...(Object.fromEntries(names.map((name, index) => [name, values[index]!])) as Record<keyof CpuGroups, number>) };
}

/** Per second of `ms`, each group's CPU (ms per second: 1000 is a whole core) between two readings. */
function cpuRates(before: Awaited<ReturnType<typeof cpuSplit>>, after: Awaited<ReturnType<typeof cpuSplit>>, ms: number) {
  return Object.fromEntries(
    Object.keys(after).map((name) => [name, ((after[name as keyof typeof after] - before[name as keyof typeof before]) / ms) * 1000]),
  ) as Record<keyof typeof after, number>;
}

/** Runs `fn` over `items`, `limit` at a time. */
async function eachLimited<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await fn(items[index]!, index);
      }
    }),
  );
  return results;
}

/** A process of engines (bench/fleet/engines-process.ts), talking over IPC. */
function forkEngines(onReport: (report: FleetReport) => void) {
  const child: ChildProcess = fork(fileURLToPath(new URL("./engines-process.ts", import.meta.url)), {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  let connected = 0;
  const waiters = new Set<(report: FleetReport) => void>();
  child.on("message", (report: FleetReport) => {
    if (report.type === "connected") connected = report.count;
    onReport(report);
    for (const waiter of waiters) waiter(report);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const next = <T extends FleetReport["type"]>(type: T) =>
    new Promise<Extract<FleetReport, { type: T }>>((resolve) => {
      const waiter = (report: FleetReport) => {
        if (report.type !== type) return;
        waiters.delete(waiter);
        resolve(report as Extract<FleetReport, { type: T }>);
      };
      waiters.add(waiter);
    });
  const command = (message: FleetCommand) => child.send(message);
  return {
    pid: child.pid!,
    connected: () => {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`a process of the engine fleet exited (code ${child.exitCode}); its error is above`);
      return connected;
    },
    async start(url: string, tokens: string[], dir: string) {
      command({ type: "start", url, tokens, dir, routerPort: await getPort() });
    },
    async count() {
      const answer = next("count");
      command({ type: "count" });
      return answer;
    },
    async stop() {
      if (child.exitCode !== null) return;
      const stopped = next("stopped");
      command({ type: "stop" });
      await Promise.race([stopped, sleep(20_000)]);
      child.kill("SIGKILL");
      await exited;
    },
  };
}

async function until(condition: () => boolean, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * `npm run bench -- fleet` (issue 17, item 4): engines speaking the real protocol (the agent
 * and orchestration, over an instant runtime) in a few processes, against two web processes
 * behind HAProxy (deploy/haproxy.cfg) and two workers on one PostgreSQL, as production runs
 * them. Measures the web processes' memory and CPU per connected engine, the heartbeats' cost,
 * and dispatch latency (deployment created to engine has the task) under a steady rate of
 * deployments across the fleet, beside the same figure with a single engine.
 */
export async function measureFleet(options: FleetOptions) {
  const base = await startBenchDatabase();
  const fleetDir = path.join(base.dir, "fleet");
  const children: ReturnType<typeof forkEngines>[] = [];
  let webs: ControlPlaneProcess[] = [];
  let workers: ControlPlaneProcess[] = [];
  let haproxy: Awaited<ReturnType<typeof startHaproxy>> | null = null;
  try {
    const [portA, portB, ...workerPorts] = await Promise.all([getPort(), getPort(), getPort(), getPort()]);
    haproxy = await startHaproxy([portA!, portB!]);
    const env = {
      DATABASE_URL: base.url,
      SLIPWAY_MASTER_KEY: base.masterKey.toString("base64"),
      AUTH_SECRET: randomBytes(24).toString("base64"),
      SLIPWAY_HOME: path.join(base.dir, "home"),
      SLIPWAY_URL: haproxy.url,
      SLIPWAY_WEB_UI: "0",
      SLIPWAY_TRUST_PROXY: "1",
      NODE_ENV: "production",
      LOG_LEVEL: "warn",
    };
    webs = [portA!, portB!].map((port) => spawnControlPlaneProcess("web", { port, env }));
    workers = workerPorts.map((port) => spawnControlPlaneProcess("worker", { port: port!, env }));
    await Promise.all([...webs, ...workers].map((process) => process.ready()));
    await Promise.all(["web1", "web2"].map((server) => haproxy!.waitFor(server, "UP")));

    // One cluster per engine, each with an environment and a service, as an organization of many clusters has them.
    const owner = createCaller({ services: base.services, actor: base.org.as("OWNER") });
    const project = await owner.projects.create({ name: "fleet" });
    const clusters = await eachLimited(
      Array.from({ length: options.engines + 1 }, (_, index) => index),
      8,
      async (index) => {
        const { cluster, engineToken } = await owner.clusters.create({ name: `fleet-${index}` });
        const environment = await owner.environments.create({ projectId: project.id, name: `env-${index}`, clusterId: cluster.id });
        await owner.services.create({ environmentId: environment.id, name: "app", config: { git: { url: "https://git.example.test/app.git" } } });
        return { engineToken, environmentId: environment.id };
      },
    );
    const [baselineCluster, ...fleetClusters] = clusters;
    // Statistics of what was just written, as autovacuum gathers them within a minute: a table
    // never analyzed leaves the planner guessing (seq scans of a thousand clusters).
    await base.services.db.execute(sql`analyze`);

    const createdAt = new Map<string, number>();
    const receivedAt = new Map<string, number>();
    /**
     * When the API call returned, its transaction committed. The latency is counted from the call
     * (as bench/dispatch-latency.ts does), and from its return too: a backlog of calls in this
     * process is this client's, not the platform's dispatch.
     */
    const committedAt = new Map<string, number>();
    const arrivals = new Map<string, () => void>();
    const onReport = (report: FleetReport) => {
      if (report.type !== "received" || receivedAt.has(report.deploymentId)) return;
      receivedAt.set(report.deploymentId, report.at);
      arrivals.get(report.deploymentId)?.();
    };
    const deploy = async (environmentId: string) => {
      const started = wallClock();
      const { deployment } = await owner.deployments.create({ environmentId, action: "DEPLOY" });
      createdAt.set(deployment.id, started);
      committedAt.set(deployment.id, wallClock());
      return deployment.id;
    };
    const latencyOf = (ids: string[], from = createdAt) => ids.filter((id) => receivedAt.has(id)).map((id) => receivedAt.get(id)! - from.get(id)!);

    // Before anything connects. The baseline's deployments below count as the fleet's memory
    // then, which errs on the high side: measured after them, a heap the collector shrinks in
    // between made the per-engine figure negative in runs of 100 engines.
    const rssBefore = await settledRss(webs);

    // The baseline: one engine, one deployment at a time, each waited for until deployed (a later one would be queued behind it).
    const single = forkEngines(onReport);
    children.push(single);
    await single.start(haproxy.url, [baselineCluster!.engineToken], path.join(fleetDir, "baseline"));
    await until(() => single.connected() === 1, 60_000, "the baseline engine to connect");
    const baselineIds: string[] = [];
    for (let run = 0; run < options.baselineRuns; run++) {
      const id = await deploy(baselineCluster!.environmentId);
      baselineIds.push(id);
      if (!receivedAt.has(id)) await new Promise<void>((resolve) => arrivals.set(id, resolve));
      while ((await owner.deployments.get({ deploymentId: id })).status !== "DEPLOYED") await sleep(5);
    }
    const baseline = latencyOf(baselineIds);

    // The fleet connects; the web processes' memory is read again once the handshakes have settled.
    const connectStarted = Date.now();
    const perProcess = Math.ceil(options.engines / options.processes);
    for (let index = 0; index < options.processes; index++) {
      const tokens = fleetClusters.slice(index * perProcess, (index + 1) * perProcess).map((cluster) => cluster.engineToken);
      if (tokens.length === 0) break;
      const child = forkEngines(onReport);
      children.push(child);
      await child.start(haproxy.url, tokens, path.join(fleetDir, `engines-${index}`));
    }
    const fleet = children.slice(1);
    const connectedEngines = () => fleet.reduce((sum, child) => sum + child.connected(), 0);
    await until(() => connectedEngines() === options.engines, 600_000, `${options.engines} engines to connect`);
    const connectMs = Date.now() - connectStarted;
    await sleep(3_000);
    const rssAfter = await settledRss(webs);

    // Every part's CPU, the machine's too: on a machine this size they share its cores, and the
    // rate the fleet takes is bounded by their sum (issue 17, item 7: say what bounds it).
    const postgres = await postmasterPid(path.join(base.dir, "pg"));
    const treesCpu = async (pids: number[]) => (await Promise.all(pids.map((pid) => cpuOfTree(pid)))).reduce((sum, ms) => sum + ms, 0);
    const groups: CpuGroups = {
      web: () => treesCpu(webs.map((web) => web.child.pid!)),
      workers: () => treesCpu(workers.map((worker) => worker.child.pid!)),
      postgres: () => cpuOfTree(postgres),
      engines: () => treesCpu(fleet.map((child) => child.pid)),
      haproxy: () => cpuOfTree(haproxy!.pid),
      api: async () => {
        const { user, system } = process.cpuUsage();
        return (user + system) / 1000;
      },
    };

    // Idle: every engine connected, heartbeating (the answer carries the tasks a pull would find: no pull after it), nothing deployed.
    const heartbeatsBefore = await Promise.all(fleet.map((child) => child.count()));
    const idleSplitStart = await cpuSplit(groups);
    const idleStart = await webUsage(webs);
    const idleStarted = performance.now();
    await sleep(options.idleSeconds * 1000);
    const idleEnd = await webUsage(webs);
    const idleMs = performance.now() - idleStarted;
    const idleSplit = cpuRates(idleSplitStart, await cpuSplit(groups), idleMs);
    const heartbeatsAfter = await Promise.all(fleet.map((child) => child.count()));
    const heartbeats = heartbeatsAfter.reduce((sum, count, index) => sum + count.heartbeats - heartbeatsBefore[index]!.heartbeats, 0);
    const stillConnected = heartbeatsAfter.reduce((sum, count) => sum + count.connected, 0);

    // Load: deployments at a steady rate, round robin over the fleet's environments, not waiting for one another.
    const total = Math.round(options.rate * options.seconds);
    const loadIds: string[] = [];
    const creations: Promise<void>[] = [];
    let failedCreations = 0;
    const loadSplitStart = await cpuSplit(groups);
    const loadStart = await webUsage(webs);
    const loadStarted = performance.now();
    for (let index = 0; index < total; index++) {
      const due = loadStarted + (index * 1000) / options.rate;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      creations.push(
        deploy(fleetClusters[index % fleetClusters.length]!.environmentId).then(
          (id) => void loadIds.push(id),
          () => void failedCreations++,
        ),
      );
    }
    await Promise.all(creations);
    const createdIn = performance.now() - loadStarted;
    // Over the creations only: the drain after them is measured for latency, not for cost.
    const loadSplit = cpuRates(loadSplitStart, await cpuSplit(groups), createdIn);
    // A backlog the run built up is measured as it drains, for a bounded time.
    await until(() => loadIds.every((id) => receivedAt.has(id)), 60_000, "every deployment to reach its engine").catch(() => undefined);
    const loadEnd = await webUsage(webs);
    const loadMs = performance.now() - loadStarted;
    const load = latencyOf(loadIds);

    return {
      engines: options.engines,
      processes: fleet.length,
      connectMs,
      rssBefore: rssBefore.median,
      rssAfter: rssAfter.median,
      rssSpread: Math.max(rssBefore.spread, rssAfter.spread),
      rssPerEngine: (rssAfter.median - rssBefore.median) / options.engines,
      idleCpuPercent: ((idleEnd.cpuMs - idleStart.cpuMs) / idleMs) * 100,
      idleCpuMsPerEngineSecond: (idleEnd.cpuMs - idleStart.cpuMs) / (idleMs / 1000) / options.engines,
      heartbeats,
      heartbeatsPerSecond: heartbeats / (idleMs / 1000),
      cpuMsPerHeartbeat: (idleEnd.cpuMs - idleStart.cpuMs) / heartbeats,
      stillConnected,
      load: {
        requested: total,
        created: loadIds.length,
        failedCreations,
        received: load.length,
        achievedRate: loadIds.length / (createdIn / 1000),
        cpuPercent: ((loadEnd.cpuMs - loadStart.cpuMs) / loadMs) * 100,
        p50: percentile(load, 50),
        p99: percentile(load, 99),
        creationP50: percentile(
          loadIds.map((id) => committedAt.get(id)! - createdAt.get(id)!),
          50,
        ),
        fromCommitP50: percentile(latencyOf(loadIds, committedAt), 50),
        fromCommitP99: percentile(latencyOf(loadIds, committedAt), 99),
      },
      baseline: { runs: baseline.length, p50: percentile(baseline, 50), p99: percentile(baseline, 99) },
      cpu: { idle: idleSplit, load: loadSplit, cores: os.availableParallelism() },
    };
  } finally {
    await Promise.all(children.map((child) => child.stop()));
    // The routers the engines started (one per process) outlive them on purpose, as an engine's do.
    await killProcessesUnder(fleetDir);
    await Promise.all([...webs, ...workers].map((process) => process.stop()));
    await haproxy?.stop();
    await base.close();
  }
}
