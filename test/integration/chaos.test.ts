/**
 * Chaos: the whole platform as `npm start` runs it (supervisor, embedded PostgreSQL, web, worker,
 * the local engine and its router), deploying an app again and again while its processes are
 * killed with SIGKILL at random points, 20 times in all. Afterwards no deployment may be stuck,
 * the app must have answered every request throughout, and every line its releases logged must
 * be stored once. The recovery time of each kill is printed.
 *
 * CHAOS_SEED=<n> replays a run's kills (the seed is printed).
 */
import fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPlatform, type RunningPlatform } from "../../e2e/fixtures/platform";
import { eventually, fixture, request } from "../engine-harness";
import { startGitServer, type GitServer } from "../git-server";

const KILLS = 20;
const TARGETS = ["engine", "web", "worker", "postgres"] as const;
type Target = (typeof TARGETS)[number];
/**
 * The app deployed: node-app's server, which also logs one numbered line per request it serves
 * ("served <instance> <n>"), so that a lost or repeated runtime log line shows as a gap or a double.
 * (An instance id, not the pid: in its sandbox every process of the app has the same pid.)
 */
const COUNTING_APP = `const fs = require("node:fs");
const http = require("node:http");
const version = fs.readFileSync("version.txt", "utf8").trim();
const instance = require("node:crypto").randomUUID();
let served = 0;
const server = http.createServer((req, res) => {
  if (req.url === "/health") return res.end("ok");
  console.log(\`served \${instance} \${++served}\`);
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ version, instance }));
});
server.listen(Number(process.env.PORT), "127.0.0.1", () => console.log(\`version \${version} listening on \${process.env.PORT}\`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
`;
const TERMINAL = ["DEPLOYED", "STOPPED", "DELETED", "BUILD_ERROR", "DEPLOYMENT_ERROR", "CANCELED"];

let platform: RunningPlatform;
let git: GitServer;

beforeAll(async () => {
  git = await startGitServer();
  platform = await startPlatform();
}, 400_000);

afterAll(async () => {
  await platform?.stop();
  await git?.close();
}, 60_000);

/** A small PRNG (mulberry32), so a failing run can be replayed from its seed. */
function random(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${platform.info.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${platform.info.apiToken}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(10_000),
  });
  if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}

/** The pid of one of the platform's processes: its script on the command line, its home in the environment. */
function pidOf(target: Exclude<Target, "postgres">): number | null {
  const script = { engine: "engine/main.ts", web: "server/web.ts", worker: "worker/main.ts" }[target];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (!cmdline.includes(script)) continue;
      const environ = fs.readFileSync(`/proc/${entry}/environ`, "utf8").split("\0");
      if (environ.includes(`SLIPWAY_HOME=${platform.info.home}`)) return Number(entry);
    } catch {
      // It ended while we looked.
    }
  }
  return null;
}

/** The running PostgreSQL server's pid (its pid file outlives a killed server). */
function postmasterPid(): number | null {
  try {
    const pid = Number(fs.readFileSync(`${platform.info.home}/postgres/postmaster.pid`, "utf8").split("\n")[0]);
    process.kill(pid, 0);
    return pid;
  } catch {
    return null;
  }
}

const healthy = async () => (await fetch(`${platform.info.url}/api/health`, { signal: AbortSignal.timeout(2_000) }).catch(() => null))?.status === 200;

type Cluster = { id: string; name: string; lastHeartbeatAt: string | null };

/** Kills one process and measures how long until the platform has it back. */
async function kill(target: Target): Promise<number> {
  // It may be down already, crashed on its own while another outage lasted: wait for it to be back.
  const pid = await eventually(() => (target === "postgres" ? postmasterPid() : pidOf(target)), 120_000, `a ${target} process to kill`);
  const killedAt = Date.now();
  process.kill(pid, "SIGKILL");
  const recovered = async (): Promise<boolean> => {
    if (target === "engine") {
      // Back when a new engine process heartbeats after the kill.
      const current = pidOf("engine");
      if (!current || current === pid) return false;
      const clusters = await api<Cluster[]>("GET", "/clusters").catch(() => []);
      return clusters.some((cluster) => cluster.lastHeartbeatAt !== null && Date.parse(cluster.lastHeartbeatAt) > killedAt);
    }
    if (target === "worker") {
      const current = pidOf("worker");
      return current !== null && current !== pid;
    }
    if (target === "postgres") {
      const current = postmasterPid();
      return current !== null && current !== pid && (await healthy());
    }
    const current = pidOf("web");
    return current !== null && current !== pid && (await healthy());
  };
  const deadline = killedAt + 120_000;
  while (!(await recovered())) {
    if (Date.now() > deadline) throw new Error(`${target} did not come back within 120 s of its kill`);
    await sleep(100);
  }
  return Date.now() - killedAt;
}

describe("chaos", () => {
  it("recovers from 20 kills of the engine, web, the worker and PostgreSQL during deployments, losing nothing", async () => {
    const seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const next = random(seed);
    console.log(`chaos seed ${seed} (CHAOS_SEED=${seed} replays it)`);

    await git.createRepo("chaos", fixture("node-app"), { "version.txt": "0\n", "server.js": COUNTING_APP });
    const project = await api<{ id: string }>("POST", "/projects", { name: "chaos" });
    const environment = await api<{ id: string }>("POST", "/environments", { projectId: project.id, name: "dev", mode: "DEVELOPMENT" });
    const service = await api<{ id: string }>("POST", "/services", {
      environmentId: environment.id,
      name: "web",
      config: { git: { url: git.url("chaos"), ref: { branch: "main" } } },
    });
    const host = "web-dev-chaos.localhost";
    const deploymentIds: string[] = [];
    let version = "0";
    const deploy = async () => {
      // Retried while the control plane is down (it is being killed on purpose).
      const { deployment } = await eventually(
        () => api<{ deployment: { id: string } }>("POST", "/deployments", { environmentId: environment.id, action: "DEPLOY" }),
        120_000,
        "a deployment requested",
      );
      if (!deploymentIds.includes(deployment.id)) deploymentIds.push(deployment.id);
      return deployment.id;
    };
    const settled = async (id: string, timeoutMs: number) =>
      eventually(
        async () => {
          const deployment = await api<{ status: string; statusMessage: string | null }>("GET", `/deployments/${id}`);
          if (!TERMINAL.includes(deployment.status)) throw new Error(`still ${deployment.status}`);
          return deployment;
        },
        timeoutMs,
        `deployment ${id} to end`,
      );

    const first = await deploy();
    expect((await settled(first, 180_000)).status).toBe("DEPLOYED");

    // The app must answer every request while the platform around it is killed: the router
    // and the live release do not depend on the control plane.
    let requests = 0;
    const failures: string[] = [];
    let probing = true;
    const probe = (async () => {
      while (probing) {
        const answer = await request(platform.info.routerPort, host).catch((error: Error) => ({ status: 0, body: error.message }));
        requests++;
        if (answer.status !== 200) failures.push(`${answer.status} ${answer.body.slice(0, 200)}`);
        await sleep(50);
      }
    })();

    const recoveries: Record<Target, number[]> = { engine: [], web: [], worker: [], postgres: [] };
    // A kill does not wait for the platform to recover from the one before, unless it is of the
    // same process: outages overlap, as they do on a bad day, and the run stays short.
    const recovering = new Map<Target, Promise<void>>();
    const order = Array.from({ length: KILLS }, (_, index) => TARGETS[index % TARGETS.length]!).sort(() => next() - 0.5);
    for (const [round, target] of order.entries()) {
      // A new commit now and then, so that deployments build and switch, not only re-run.
      if (round % 3 === 0) {
        version = String(round + 1);
        await git.pushDirectory("chaos", fixture("node-app"), { "version.txt": `${version}\n`, "server.js": COUNTING_APP });
      }
      await deploy();
      // Somewhere in the deployment: queued, cloning, building, starting or switching.
      await sleep(Math.floor(next() * 2_000));
      await recovering.get(target);
      const back = kill(target).then((recoveryMs) => {
        recoveries[target].push(recoveryMs);
        console.log(`kill ${round + 1}/${KILLS}: ${target}, back after ${recoveryMs} ms`);
      });
      recovering.set(target, back);
    }
    await Promise.all(recovering.values());

    // Every deployment ends; none is left QUEUED, BUILDING or DEPLOYING.
    const outcomes = [];
    for (const id of deploymentIds) outcomes.push({ id, ...(await settled(id, 240_000)) });
    const last = await deploy();
    expect((await settled(last, 180_000)).status).toBe("DEPLOYED");
    probing = false;
    await probe;

    // Every line each release wrote to its runtime log is stored, and none twice: the engine
    // reads the log files by offset, and an engine killed mid-read neither skips nor repeats.
    const lines: string[] = [];
    let lastSeq = 0;
    for (;;) {
      const page = await api<Array<{ seq: number; text: string }>>("GET", `/logs?serviceId=${service.id}&after=${lastSeq}&limit=5000`);
      lines.push(...page.map((line) => line.text));
      if (page.length < 5000) break;
      lastSeq = page.at(-1)!.seq;
    }
    const served = new Map<string, number[]>();
    for (const text of lines) {
      const match = /^served ([0-9a-f-]{36}) (\d+)$/.exec(text);
      if (match) served.set(match[1]!, [...(served.get(match[1]!) ?? []), Number(match[2])]);
    }
    expect(served.size).toBeGreaterThan(1);
    for (const [instance, counts] of served) {
      const sorted = [...counts].sort((a, b) => a - b);
      expect(sorted, `release process ${instance}: every request's line stored once`).toEqual(Array.from({ length: sorted.length }, (_, index) => index + 1));
    }

    const summary = (Object.entries(recoveries) as Array<[Target, number[]]>).map(([target, times]) => {
      const sorted = [...times].sort((a, b) => a - b);
      return `${target}: ${times.length} kills, recovery p50 ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted.at(-1)} ms`;
    });
    const counts = outcomes.reduce<Record<string, number>>((all, outcome) => ({ ...all, [outcome.status]: (all[outcome.status] ?? 0) + 1 }), {});
    const unsuccessful = outcomes
      .filter((outcome) => outcome.status !== "DEPLOYED")
      .map((outcome) => `${outcome.id} ${outcome.status}: ${outcome.statusMessage}`);
    console.log(
      [
        `chaos seed ${seed}: ${KILLS} kills`,
        ...summary,
        `deployments: ${JSON.stringify(counts)}`,
        ...unsuccessful,
        `app requests: ${requests}, failed: ${failures.length}`,
      ].join("\n"),
    );

    expect(failures).toEqual([]);
    // The last deployment serves the last commit.
    expect(JSON.parse((await request(platform.info.routerPort, host)).body).version).toBe(version);
  }, 900_000);
});
