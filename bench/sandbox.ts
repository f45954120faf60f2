import os from "node:os";
import type { Engine } from "../engine/core";
import type { SandboxHost } from "../engine/runtime/local/sandbox/sandbox";
import { hostSandbox } from "../engine/runtime/local/sandbox/service-sandboxes";
import { engineHome, fixture, service, task } from "../test/engine-harness";
import type { GitServer } from "../test/git-server";
import { roundTrips } from "./shell-and-logs";
import { percentile } from "./stats";

/**
 * What the local runtime's sandbox costs: the same app deployed, and the same shell typed into,
 * by two engines in this run, one sandboxing (bubblewrap, a user per service) and one on a
 * trusted cluster without a sandbox (the baseline). Deploys alternate between the two so that
 * drift of the machine falls on both.
 */
export async function measureSandbox(git: GitServer, runs: number, keys: number) {
  const host = await hostSandbox(os.tmpdir());
  if (host.kind === "none") throw new Error(`this host cannot sandbox: ${host.reason}`);
  await git.createRepo("sandbox-bench", fixture("node-app"));
  const sandboxed = await benchEngine(Promise.resolve(host));
  const baseline = await benchEngine(Promise.resolve({ kind: "none", reason: "the baseline runs without a sandbox" }));
  try {
    const deploys = { sandboxed: [] as number[], baseline: [] as number[] };
    for (let run = 0; run < runs; run++) {
      await git.pushDirectory("sandbox-bench", fixture("node-app"), { "version.txt": `${run}\n` });
      deploys.sandboxed.push(await sandboxed.deploy(git));
      deploys.baseline.push(await baseline.deploy(git));
    }
    const shell = { sandboxed: await sandboxed.keystrokes(keys), baseline: await baseline.keystrokes(keys) };
    const p50 = (samples: number[]) => percentile(samples, 50);
    return {
      runs,
      keys,
      deploy: { sandboxed: p50(deploys.sandboxed), baseline: p50(deploys.baseline) },
      shell: {
        sandboxed: p50(shell.sandboxed),
        baseline: p50(shell.baseline),
        sandboxedP99: percentile(shell.sandboxed, 99),
        baselineP99: percentile(shell.baseline, 99),
      },
    };
  } finally {
    await sandboxed.cleanup();
    await baseline.cleanup();
  }
}

async function benchEngine(sandbox: Promise<SandboxHost>) {
  const env = await engineHome({ drainTimeoutMs: 500, stopGraceMs: 2_000, sandbox });
  const engine: Engine = env.newEngine();
  await engine.start();
  let app: ReturnType<typeof service> | null = null;
  return {
    /** One deploy of the app's latest commit, in ms (clone, build, start, health check, switch, drain). */
    async deploy(git: GitServer): Promise<number> {
      app ??= service({ name: "bench", config: { git: { url: git.url("sandbox-bench") } } });
      const deploy = { ...task("DEPLOY", [app]), trusted: true };
      const started = performance.now();
      await engine.execute(deploy);
      const elapsed = performance.now() - started;
      const final = env.final(deploy.deploymentId);
      if (final?.status !== "succeeded") throw new Error(`the bench deploy ${final?.status ?? "did not end"}: ${final?.message ?? ""}`);
      return elapsed;
    },
    /** Keystroke round trips in a shell of the app (pseudo-terminal), in ms. */
    async keystrokes(keys: number): Promise<number[]> {
      if (!app) throw new Error("deploy first");
      const session = await engine.exec!(app.id, [], { tty: true, cols: 120, rows: 40 });
      try {
        return await roundTrips(
          keys,
          (data) => session.write(data),
          (listener) => session.on("data", (chunk: Buffer | string) => listener(chunk.toString())),
        );
      } finally {
        session.destroy();
      }
    },
    cleanup: () => env.cleanup(),
  };
}
