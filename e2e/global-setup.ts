import type { FullConfig } from "@playwright/test";
import { startPlatform } from "./fixtures/platform";

/** Starts the platform once for the run; the returned function is Playwright's teardown. */
export default async function globalSetup(_config: FullConfig) {
  const platform = await startPlatform();
  return async () => {
    await platform.stop();
  };
}
