import { startGitServer } from "../test/git-server";
import { measureClone } from "./clone";
import { startBenchControlPlane } from "./control-plane";
import { measureDeployOverhead } from "./deploy-overhead";
import { measureDispatchLatency } from "./dispatch-latency";
import { measureShellAndLogs } from "./shell-and-logs";
import { ms } from "./stats";
import { measureWebhookIntake } from "./webhooks";

/**
 * `npm run bench`: speed figures of the platform, each beside a baseline measured in the same
 * run on the same machine. Numbers, not pass/fail: tests check behaviour.
 */
async function main() {
  const plane = await startBenchControlPlane();
  const git = await startGitServer();
  try {
    const latency = await measureDispatchLatency(plane, 200);
    console.log(`dispatch: deployment created -> task received by the engine (${latency.runs} runs): p50 ${ms(latency.p50)}, p99 ${ms(latency.p99)}`);

    const hooks = await measureWebhookIntake(plane, { connections: 50, durationSeconds: 10 });
    const rate = (r: { perSecond: number; p50: number; p99: number }) => `${Math.round(r.perSecond)} deliveries/s, p50 ${ms(r.p50)}, p99 ${ms(r.p99)}`;
    console.log(
      `webhooks (${hooks.connections} connections, signed ${hooks.payloadBytes}-byte GitHub pushes): intake ${rate(hooks.intake)}; ` +
        `bare Node http 202 ${rate(hooks.ceiling)} (ceiling); ` +
        `${hooks.accepted} answered 202, ${hooks.stored} stored${hooks.accepted === hooks.stored ? "" : " (MISMATCH)"}, ` +
        `${hooks.intake.errors} errors, ${hooks.intake.timeouts} timeouts; backlog processed ${ms(hooks.drainMs)} after the run`,
    );

    const shells = await measureShellAndLogs(plane, git, { keys: 500, logRate: 10_000, logSeconds: 5 });
    console.log(
      `shell keystroke round trip (${shells.keys} keys, /ui -> web -> engine -> pty echo and back): p50 ${ms(shells.shell.p50)}, p99 ${ms(shells.shell.p99)}; ` +
        `local pty echo p50 ${ms(shells.localPty.p50)}, p99 ${ms(shells.localPty.p99)} (floor)`,
    );
    console.log(
      `runtime logs (${shells.logs.rate} lines/s for ${shells.logs.total / shells.logs.rate} s, release -> engine -> web -> following client): ` +
        `${Math.round(shells.logs.linesPerSecond)} lines/s received, ${shells.logs.lost} lost of ${shells.logs.total}; latency p50 ${ms(shells.logs.p50)}, p99 ${ms(shells.logs.p99)}`,
    );

    const clone = await measureClone(plane, 20);
    console.log(
      `clone (metadata only, 20 services and 200 variables, ${clone.runs} runs): p50 ${ms(clone.p50)}, p99 ${ms(clone.p99)}; ` +
        `reading the same environment's services and variables p50 ${ms(clone.readP50)} (baseline)`,
    );

    const overhead = await measureDeployOverhead(plane, git, 5);
    console.log(
      `deploy (${overhead.runs} runs, node app from git): platform p50 ${ms(overhead.p50Platform)}, ` +
        `same clone+install+start run directly p50 ${ms(overhead.p50Direct)} (baseline); ` +
        `overhead ${ms(overhead.overhead)}, ratio ${overhead.ratio.toFixed(2)}x`,
    );
  } finally {
    await git.close();
    await plane.close();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
