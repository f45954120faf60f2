import { defineConfig } from "vitest/config";
import base from "../../vitest.config";

/** The suite's own configuration (global setup included), running only the failing canary. */
export default defineConfig({
  ...base,
  test: { ...base.test, include: ["test/canary/*.canary.ts"] },
});
