import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * The chaos test boots a whole platform, the corpus test deploys ten apps and the docker plans
 * test builds images of every plan with Podman: each runs for three minutes or more. Started first, they overlap the other files instead of trailing them (on a clean
 * machine, with no timings cached, vitest would start them wherever their file size puts them).
 */
const LONG_FILES = ["/chaos.test.ts", "/local-engine.corpus.test.ts", "/docker-engine.plans.test.ts"];

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const isLong = (file: TestSpecification) => LONG_FILES.some((name) => file.moduleId.endsWith(name));
    return [...sorted.filter(isLong), ...sorted.filter((file) => !isLong(file))];
  }
}

export default defineConfig({
  test: {
    include: ["{server,worker,engine,cli,components,test}/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests start real processes and servers and spend much of their time waiting on
    // them: on two cores, three files at a time took the suite from 223 s to 156 s, all passing.
    maxWorkers: 3,
    pool: "forks",
    sequence: { sequencer: LongestFirst },
  },
});
