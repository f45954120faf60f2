import { defineConfig } from "@playwright/test";
import base from "../../playwright.config";

/** The journeys' own configuration (global setup included), running only the failing canary. */
export default defineConfig({
  ...base,
  testDir: ".",
  testMatch: "*.canary.spec.ts",
  globalSetup: "../../e2e/global-setup.ts",
  reporter: [["list"]],
  outputDir: "../../test-results/canary",
});
