import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * The chaos test boots a whole platform and runs for minutes: started first, it overlaps the
 * other files instead of trailing them (on a clean machine, with no timings cached, vitest would
 * start it wherever its file size puts it).
 */
class ChaosFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const isChaos = (file: TestSpecification) => file.moduleId.endsWith("/chaos.test.ts");
    return [...sorted.filter(isChaos), ...sorted.filter((file) => !isChaos(file))];
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
    sequence: { sequencer: ChaosFirst },
  },
});
