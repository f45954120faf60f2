import { startGitServer } from "../test/git-server";
import { startBenchControlPlane } from "./control-plane";
import { measureDeployOverhead } from "./deploy-overhead";
import { measureDispatchLatency } from "./dispatch-latency";
import { ms } from "./stats";

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
