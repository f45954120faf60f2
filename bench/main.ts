import os from "node:os";
import { parseArgs } from "node:util";
import { startGitServer, type GitServer } from "../test/git-server";
import { measureBuildCache, measureDockerBuildCache } from "./build-cache";
import { measureClone } from "./clone";
import { startBenchControlPlane } from "./control-plane";
import { measureDeployOverhead } from "./deploy-overhead";
import { measureDispatchLatency } from "./dispatch-latency";
import { measureFleet } from "./fleet/fleet";
import { measureRetention, monthOfRates } from "./retention";
import { measureSandbox } from "./sandbox";
import { measureShellAndLogs } from "./shell-and-logs";
import { measureStages } from "./stages";
import { measureWake } from "./wake";
import { ms } from "./stats";
import { measureWebhookIntake } from "./webhooks";
import { defaultRetention } from "../server/retention/retention";

type Plane = Awaited<ReturnType<typeof startBenchControlPlane>>;
const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;
const met = (ok: boolean) => (ok ? "met" : "NOT met");

/**
 * `npm run bench`: speed figures of the platform, each beside a baseline measured in the same
 * run on the same machine. Numbers, not pass/fail: tests check behaviour.
 */
/** The benchmarks by name: `npm run bench -- webhooks clone` runs only those. */
const benchmarks: Record<string, (plane: Plane, git: GitServer) => Promise<void>> = {
  async dispatch(plane) {
    const latency = await measureDispatchLatency(plane, 200);
    const figures = (f: { p50: number; p99: number }) => `p50 ${ms(f.p50)}, p99 ${ms(f.p99)}`;
    console.log(
      `dispatch: deployment created -> task received by the engine (${latency.runs} runs): ${figures(latency)}; ` +
        `a bare NOTIFY between two connections ${figures(latency.notifyFloor)} (floor of one hop through PostgreSQL); p50 ratio ${(latency.p50 / latency.notifyFloor.p50).toFixed(1)}x`,
    );
    console.log(
      `  where it goes: the API call (through its commit) ${figures(latency.apiCall)}; created -> lease's task:available heard ${figures(latency.toLease)}; ` +
        `heard -> engine has the task (the web process reads the task and sends it on the engine's socket) ${figures(latency.leaseToEngine)}`,
    );
    console.log(
      `  a deployment queued behind another (${latency.queuedBehind.runs} runs), leased by the end of the one ahead (no worker job): ` +
        `the engine reports that end -> lease's task:available heard ${figures(latency.queuedBehind.endToLease)}, -> engine has the task ${figures(latency.queuedBehind.endToEngine)}`,
    );
  },

  async shell(plane, git) {
    const shells = await measureShellAndLogs(plane, git, { keys: 500, logRate: 10_000, logSeconds: 5 });
    console.log(
      `shell keystroke round trip (${shells.keys} keys, /ui -> web -> engine -> pty echo and back): p50 ${ms(shells.shell.p50)}, p99 ${ms(shells.shell.p99)}; ` +
        `local pty echo p50 ${ms(shells.localPty.p50)}, p99 ${ms(shells.localPty.p99)} (floor); ` +
        `the same topology with bare Node processes (client -> socket.io relay -> host with a pty) p50 ${ms(shells.relayFloor.p50)}, p99 ${ms(shells.relayFloor.p99)} (floor of the hops)`,
    );
    console.log(
      `runtime logs (${shells.logs.rate} lines/s for ${shells.logs.total / shells.logs.rate} s, release -> engine -> web -> following client): ` +
        `${Math.round(shells.logs.linesPerSecond)} lines/s received, ${shells.logs.lost} lost of ${shells.logs.total}; latency p50 ${ms(shells.logs.p50)}, p99 ${ms(shells.logs.p99)}; ` +
        `the release's log file followed locally p50 ${ms(shells.logs.localTail.p50)}, p99 ${ms(shells.logs.localTail.p99)} (floor)`,
    );
  },

  async sandbox(_plane, git) {
    const sandbox = await measureSandbox(git, 7, 300);
    console.log(
      `sandbox (local runtime, bubblewrap and a user per service): deploy p50 ${ms(sandbox.deploy.sandboxed)} vs ${ms(sandbox.deploy.baseline)} unsandboxed (baseline), ` +
        `+${ms(sandbox.deploy.sandboxed - sandbox.deploy.baseline)} (${sandbox.runs} runs each); ` +
        `shell keystroke p50 ${ms(sandbox.shell.sandboxed)} vs ${ms(sandbox.shell.baseline)}, p99 ${ms(sandbox.shell.sandboxedP99)} vs ${ms(sandbox.shell.baselineP99)} (${sandbox.keys} keys)`,
    );
  },

  async clone(plane) {
    // 100 runs: the p99 of 20 was their slowest one.
    const clone = await measureClone(plane, 100);
    console.log(
      `clone (metadata only, 20 services and 200 variables, ${clone.runs} runs): p50 ${ms(clone.p50)}, p99 ${ms(clone.p99)}; ` +
        `reading the same environment's services and variables p50 ${ms(clone.readP50)}, p99 ${ms(clone.readP99)} (baseline)`,
    );
  },

  async deploy(plane, git) {
    const overhead = await measureDeployOverhead(plane, git, 5);
    console.log(
      `deploy (${overhead.runs} runs, node app from git): platform p50 ${ms(overhead.p50Platform)}, ` +
        `same clone+install+start run directly p50 ${ms(overhead.p50Direct)} (baseline); ` +
        `overhead ${ms(overhead.overhead)}, ratio ${overhead.ratio.toFixed(2)}x`,
    );
  },

  async stages(plane, git) {
    const run = await measureStages(plane, git);
    const figures = (r: typeof run.sequential) => `DEPLOYED after ${ms(r.totalMs)}, first app live after ${ms(r.firstLiveMs)}`;
    console.log(
      `stages (clone-and-deploy of 8 small Node apps in 2 stages of 4, from the clone's API call): ` +
        `one service at a time (concurrency 1, baseline) ${figures(run.sequential)}; ` +
        `side by side (concurrency ${run.parallel.concurrency}) ${figures(run.parallel)}; ratio ${run.ratio.toFixed(2)}x`,
    );
  },

  async "build-cache"(_plane, git) {
    const { cold, warm, byHand } = await measureBuildCache(git);
    const ratio = warm.ms / cold.ms;
    console.log(
      `build cache (the corpus's Next.js app, a local engine, packages from a registry on 127.0.0.1): cold deploy ${ms(cold.ms)}; ` +
        `warm deploy of a new commit ${ms(warm.ms)}; npm ci + next build by hand ${ms(byHand)} (baseline, empty npm cache)`,
    );
    console.log(`  cold: ${cold.phases} (${cold.cache})`);
    console.log(`  warm: ${warm.phases} (${warm.cache})`);
    console.log(
      `  warm/cold ${ratio.toFixed(2)}: ${ratio <= 0.5 ? "meets" : "MISSES"} the goal of warm <= 0.5 x cold; cold/by-hand ${(cold.ms / byHand).toFixed(2)}`,
    );
    const docker = await measureDockerBuildCache(git);
    console.log(
      `  docker runtime (Podman, the same app built into an image): cold deploy ${ms(docker.cold)}; warm deploy of a new commit ${ms(docker.warm)}; ` +
        `warm/cold ${(docker.warm / docker.cold).toFixed(2)} (${docker.reused})`,
    );
  },

  async wake(_plane, git) {
    const run = await measureWake(git, 20);
    console.log(
      `wake (a small Node app asleep, first request through the router until answered, ${run.wakes} wakes): p50 ${ms(run.wake.p50)}, p99 ${ms(run.wake.p99)}; ` +
        `the same app started by hand until its health check answers p50 ${ms(run.cold.p50)}, p99 ${ms(run.cold.p99)} (baseline)`,
    );
  },

  async retention(plane) {
    // A full month (54 million log lines) takes an hour to insert on two cores: rates divided by this.
    const scale = Number(process.env.BENCH_RETENTION_SCALE ?? 50);
    const run = await measureRetention(plane, scale);
    const sizes = (at: typeof run.before) =>
      Object.entries(at.sizes)
        .map(([table, size]) => `${table} ${size.rows} rows ${mib(size.bytes)}`)
        .join(", ");
    const latency = (at: typeof run.before) =>
      Object.entries(at.latency)
        .map(([query, figures]) => `${query} p50 ${ms(figures.p50)} p99 ${ms(figures.p99)}`)
        .join("; ");
    const { services, days, logLinesPerSecond, rawSampleSeconds } = monthOfRates;
    console.log(
      `retention: ${days} days of ${services} services at ${logLinesPerSecond} runtime log lines/s and a metric sample every ${rawSampleSeconds} s per service ` +
        `(raw kept 24 h, minute averages after), SCALED DOWN ${scale}x (rows ${scale}x further apart: multiply rows and sizes by ${scale} for the full month); filled in ${ms(run.fillMs)}`,
    );
    console.log(`  before: ${sizes(run.before)}; ${latency(run.before)}`);
    console.log(
      `  retention (defaults: logs ${defaultRetention.runtimeLogDays} d, metrics ${defaultRetention.metricDays} d) took ${ms(run.retentionMs)}: ` +
        `${run.outcome.runtimeLogs.deleted} log lines in ${run.outcome.runtimeLogs.statements} statements, ${run.outcome.metrics.deleted} minute averages`,
    );
    // Plain VACUUM (autovacuum) keeps a table's files and reuses the freed pages for new rows: the
    // size stays where it is rather than shrinking, and stops growing.
    console.log(`  after (files keep their size, the freed pages take the next days' rows): ${sizes(run.after)}; ${latency(run.after)}`);
  },

  // Last: its tens of thousands of 8 KB rows leave PostgreSQL checkpointing and vacuuming, which
  // the latency figures of the others would measure too.
  async webhooks(plane) {
    const hooks = await measureWebhookIntake(plane, { connections: 50, durationSeconds: 10 });
    const rate = (r: { perSecond: number; p50: number; p99: number }) => `${Math.round(r.perSecond)} deliveries/s, p50 ${ms(r.p50)}, p99 ${ms(r.p99)}`;
    console.log(
      `webhooks (${hooks.connections} connections, signed ${hooks.payloadBytes}-byte GitHub pushes to a repository no service follows): intake ${rate(hooks.intake)}; ` +
        `bare Node http 202 ${rate(hooks.ceiling)} (ceiling); ` +
        `${hooks.accepted} answered 202, ${hooks.answeredStored === hooks.accepted ? "every one" : `ONLY ${hooks.answeredStored}`} stored ` +
        `(${hooks.stored} rows from the run: ${hooks.stored - hooks.accepted} more were in flight when the load stopped), ` +
        `${hooks.intake.errors} errors, ${hooks.intake.timeouts} timeouts; backlog processed ${ms(hooks.drainMs)} after the run`,
    );
    const { web, postgres } = hooks.intake.cpuMicros as { web: number; postgres: number };
    const cores = os.availableParallelism();
    console.log(
      `  CPU per delivery (user and system time, whatever else loads the machine): web process ${web.toFixed(0)} µs, PostgreSQL ${postgres.toFixed(0)} µs; ` +
        `bare server ${hooks.ceiling.cpuMicros.server!.toFixed(0)} µs; so on ${cores} cores, the load generator aside, the intake stops at about ` +
        `${Math.round((cores * 1e6) / (web + postgres))} deliveries/s`,
    );
    const floor = hooks.commitFloor;
    console.log(
      `  durable commit floor (8 kB write + fdatasync beside PostgreSQL's data, ${floor.samples} runs, after the load): p50 ${ms(floor.p50)}, p99 ${ms(floor.p99)}; ` +
        `every 202 waits for one such flush (its batch's commit), so ${hooks.connections} senders get at most ${hooks.connections} answers per flush`,
    );
  },
};

/** Its million rows take minutes to insert and leave the database busy for the other figures. */
const onlyWhenNamed = new Set(["retention"]);

/** Flags of the benchmarks that take some: `npm run bench -- fleet --engines 200 --rate 50`. */
const flags = {
  engines: { type: "string", default: "1000" },
  rate: { type: "string", default: "100" },
  seconds: { type: "string", default: "10" },
  processes: { type: "string", default: "4" },
} as const;
type Flags = ReturnType<typeof parseArgs<{ options: typeof flags; allowPositionals: true }>>["values"];

function positiveNumber(flags: Flags, name: keyof typeof flags): number {
  const value = Number(flags[name]);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} takes a positive number, not "${flags[name]}"`);
  return value;
}

/** Benchmarks that start their own control plane (several processes behind a load balancer); run only when named. */
const standalone: Record<string, (flags: Flags) => Promise<void>> = {
  async fleet(given) {
    const engines = Math.round(positiveNumber(given, "engines"));
    const fleet = await measureFleet({
      engines,
      rate: positiveNumber(given, "rate"),
      seconds: positiveNumber(given, "seconds"),
      processes: Math.round(positiveNumber(given, "processes")),
      baselineRuns: 100,
      idleSeconds: 15,
    });
    const { load, baseline } = fleet;
    console.log(
      `fleet: ${fleet.engines} engines (real agent and protocol, instant runtime) in ${fleet.processes} processes, each its own cluster, ` +
        `against two web processes behind HAProxy and two workers on one PostgreSQL; all connected in ${(fleet.connectMs / 1000).toFixed(1)} s`,
    );
    console.log(
      `  web memory (RSS of both web processes): ${mib(fleet.rssBefore)} before any engine connected, ${mib(fleet.rssAfter)} with the fleet connected: ` +
        `${(fleet.rssPerEngine / 1024).toFixed(0)} KiB per engine (goal under 2 MiB: ${met(fleet.rssPerEngine < 2 * 1048576)}); ` +
        `readings a second apart varied by up to ${mib(fleet.rssSpread)} (garbage collection), ${(fleet.rssSpread / fleet.engines / 1024).toFixed(0)} KiB per engine`,
    );
    console.log(
      `  web CPU with the fleet idle: ${fleet.idleCpuPercent.toFixed(1)}% of a core, ${fleet.idleCpuMsPerEngineSecond.toFixed(3)} ms per second per engine; ` +
        `heartbeats ${fleet.heartbeatsPerSecond.toFixed(0)}/s (their answers carry the pending tasks: no pull after them), ${fleet.cpuMsPerHeartbeat.toFixed(2)} ms of web CPU each; ` +
        `${fleet.stillConnected} engines connected at the end of the window`,
    );
    const atScale =
      fleet.engines >= 1000
        ? `goal p99 under 100 ms at 1,000 engines: ${met(load.p99 < 100 && load.received === load.created && load.failedCreations === 0)}`
        : `goal p99 under 100 ms applies at 1,000 engines, this run has ${fleet.engines}`;
    console.log(
      `  dispatch (deployment created -> engine has the task) with ${load.requested} deployments at ${load.achievedRate.toFixed(0)}/s across the fleet: ` +
        `p50 ${ms(load.p50)}, p99 ${ms(load.p99)} (the API call alone p50 ${ms(load.creationP50)}; from its return p50 ${ms(load.fromCommitP50)}, p99 ${ms(load.fromCommitP99)}; ${load.received} of ${load.created} received within a minute${load.failedCreations ? `, ${load.failedCreations} creations FAILED` : ""}; ` +
        `web CPU ${load.cpuPercent.toFixed(0)}% of a core); one engine, one deployment at a time: p50 ${ms(baseline.p50)}, p99 ${ms(baseline.p99)} ` +
        `(baseline, ${baseline.runs} runs); p99 ratio ${(load.p99 / baseline.p99).toFixed(2)}x; ${atScale}`,
    );
    // What bounds the rate on this machine: every part's CPU, idle and per deployment created.
    const { idle, load: busy, cores } = fleet.cpu;
    const parts = [
      ["web", "web"],
      ["postgres", "PostgreSQL"],
      ["engines", "engines"],
      ["api", "API calls (this process)"],
      ["workers", "workers"],
      ["haproxy", "HAProxy"],
    ] as const;
    const perDeployment = (name: keyof typeof idle) => (busy[name] - idle[name]) / load.achievedRate;
    console.log(
      `  CPU, in ms per second (1000 is a core), idle -> while creating: ` +
        parts.map(([name, label]) => `${label} ${idle[name].toFixed(0)} -> ${busy[name].toFixed(0)}`).join(", ") +
        `; the whole machine ${idle.machine.toFixed(0)} -> ${busy.machine.toFixed(0)} of ${cores * 1000}`,
    );
    console.log(
      `  CPU per deployment created: ` +
        parts.map(([name, label]) => `${label} ${perDeployment(name).toFixed(1)} ms`).join(", ") +
        `; the whole machine ${perDeployment("machine").toFixed(1)} ms: its ${cores} cores, less the idle fleet's share, bound the rate at ` +
        `${((cores * 1000 - idle.machine) / perDeployment("machine")).toFixed(0)}/s`,
    );
  },
};

/**
 * `npm run bench`: speed figures of the platform, each beside a baseline measured in the same
 * run on the same machine. Numbers, not pass/fail: tests check behaviour.
 */
async function main() {
  const { values: given, positionals: chosen } = parseArgs({ options: flags, allowPositionals: true });
  const known = [...Object.keys(benchmarks), ...Object.keys(standalone)];
  const unknown = chosen.filter((name) => !known.includes(name));
  if (unknown.length > 0) throw new Error(`unknown benchmark ${unknown.join(", ")}: choose from ${known.join(", ")}`);
  const shared = Object.keys(benchmarks).filter((name) => chosen.includes(name) || (chosen.length === 0 && !onlyWhenNamed.has(name)));
  if (shared.length > 0) {
    const plane = await startBenchControlPlane();
    const git = await startGitServer();
    try {
      for (const name of shared) await benchmarks[name]!(plane, git);
    } finally {
      await git.close();
      await plane.close();
    }
  }
  for (const name of Object.keys(standalone)) if (chosen.includes(name)) await standalone[name]!(given);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
