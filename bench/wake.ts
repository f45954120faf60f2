import { spawn } from "node:child_process";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import getPort from "get-port";
import { engineHome, eventually, fixture, request, service, task } from "../test/engine-harness";
import type { GitServer } from "../test/git-server";
import { percentile } from "./stats";

/**
 * Sleep when idle (issue 16, part 3): how long the first request to a sleeping small Node app
 * takes (held by the router while the engine starts the release and it passes its health
 * check), beside the same app's cold start by hand (`node server.js` until its health check
 * answers). A "minute" of `sleepAfterMinutes` lasts 200 ms here, so it falls asleep quickly.
 */
export async function measureWake(git: GitServer, wakes: number) {
  await git.createRepo("wake-bench", fixture("node-app"));
  const env = await engineHome({ drainTimeoutMs: 500, stopGraceMs: 2_000, sleepMinuteMs: 200 });
  const engine = env.newEngine();
  try {
    await engine.start();
    const app = service({ name: "napper", config: { git: { url: git.url("wake-bench") }, healthCheckPath: "/health", sleepAfterMinutes: 1 } });
    const deploy = { ...task("DEPLOY", [app]), trusted: true };
    await engine.execute(deploy);
    const host = `napper-test.localhost`;
    const state = () => engine.services().find((entry) => entry.serviceId === app.id);
    const latencies: number[] = [];
    for (let wake = 0; wake < wakes; wake++) {
      const port = state()!.port!;
      await eventually(() => state()?.state === "sleeping", 10_000, "the app to fall asleep");
      // Asleep for real: its process no longer listens.
      await eventually(async () => !(await accepts(port)), 10_000, "its process to stop");
      const started = performance.now();
      const answer = await request(env.routerPort, host, "/");
      latencies.push(performance.now() - started);
      if (answer.status !== 200) throw new Error(`the wake answered ${answer.status}: ${answer.body}`);
    }
    const cold = await coldStarts(wakes);
    return {
      wakes,
      wake: { p50: percentile(latencies, 50), p99: percentile(latencies, 99) },
      cold: { p50: percentile(cold, 50), p99: percentile(cold, 99) },
    };
  } finally {
    await env.cleanup();
  }
}

/** The app started by hand, `runs` times: from spawn to its health check's first 200. */
async function coldStarts(runs: number): Promise<number[]> {
  const samples: number[] = [];
  for (let run = 0; run < runs; run++) {
    const port = await getPort({ host: "127.0.0.1" });
    const started = performance.now();
    const child = spawn(process.execPath, ["server.js"], { cwd: fixture("node-app"), env: { ...process.env, PORT: String(port) }, stdio: "ignore" });
    try {
      for (;;) {
        const answer = await request(port, "localhost", "/health").catch(() => null);
        if (answer?.status === 200) break;
        await sleep(5);
      }
      samples.push(performance.now() - started);
    } finally {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
    }
  }
  return samples;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
