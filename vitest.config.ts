import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["{server,worker,engine,cli,components,test}/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests start real processes and servers; two cores run two files at a time.
    maxWorkers: 2,
    pool: "forks",
  },
});
