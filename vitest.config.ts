import { defineConfig } from "vitest/config";

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
  },
});
