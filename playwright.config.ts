import { defineConfig } from "@playwright/test";

/**
 * End-to-end journeys in real Chromium against the production build and the whole platform
 * (e2e/global-setup.ts starts it the way `npm start` does, on free ports). The journeys share
 * that one platform, so they run one at a time; each seeds its own project and users.
 *
 * Debian's chromium is used (no browser download): `apt-get install -y chromium`.
 */
export default defineConfig({
  testDir: "e2e",
  testMatch: "**/*.spec.ts",
  globalSetup: "./e2e/global-setup.ts",
  outputDir: "test-results",
  workers: 1,
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  retries: 0,
  timeout: 90_000,
  expect: { timeout: 15_000 },
  reporter: [["list"], ["html", { open: "never", outputFolder: "playwright-report" }]],
  use: {
    // The test fixture points baseURL at the platform the global setup started.
    screenshot: "only-on-failure",
    trace: "retain-on-failure",
    actionTimeout: 15_000,
    navigationTimeout: 30_000,
    // The theme respects reduced motion: dialogs and menus appear without fading, so axe never
    // measures a half-transparent one (Mantine starts its transitions from timers, before any
    // CSS animation exists for the fixture to wait on).
    reducedMotion: "reduce",
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
      ],
    },
  },
});
