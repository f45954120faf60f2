import path from "node:path";
import type { Locator } from "@playwright/test";
import { fileURLToPath } from "node:url";
import { DeploymentPage } from "./pages/deployment-page";
import { expect, NODE_APP, test } from "./fixtures/test";
import { seedApp } from "./fixtures/seed";

const BROKEN_BUILD = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../test/fixtures/apps/broken-build");

test("a failed build stops at its step, leads with it and its last lines, and keeps its output", async ({
  page,
  api,
  git,
  unique,
  platform,
  signIn,
  capture,
}) => {
  const app = await seedApp(api, git, { project: unique("broken"), repo: unique("repo") }, BROKEN_BUILD);
  await signIn({ email: platform.adminEmail, password: platform.adminPassword });
  await page.goto(`/environments/${app.environmentId}`);
  await page.getByRole("button", { name: "Deploy", exact: true }).click();

  const { deployment } = await DeploymentPage.opened(page);
  await expect(deployment.status()).toHaveAttribute("data-status", "BUILD_ERROR", { timeout: 60_000 });
  await expect(deployment.step("web", "clone")).toHaveAttribute("data-state", "succeeded");
  await expect(deployment.step("web", "build")).toHaveAttribute("data-state", "failed");
  await expect(deployment.step("web", "start")).toHaveAttribute("aria-label", "Start: Skipped");
  // The page leads with the failing step, by its name, and the build's last lines, before the steps.
  const callout = page.getByRole("alert", { name: "web: Build failed" });
  await expect(callout).toContainText("build command `npm run build` failed (exit 1)");
  await expect(callout.getByLabel("Last output lines")).toContainText("error: cannot find module './missing'");
  await expectAbove(callout, deployment.steps("web"));
  await expect(deployment.logs).toContainText("error: cannot find module './missing'");
  await expect(deployment.logs.locator('[data-fd="stderr"]').first()).toBeAttached();
  // Finished: nothing left to cancel.
  await expect(page.getByRole("button", { name: "Cancel" })).toHaveCount(0);
  await capture("build-error");

  await page.goto(`/environments/${app.environmentId}`);
  const row = page.getByRole("table", { name: "Deployment history" }).getByRole("row").nth(1);
  await expect(row).toContainText("Build error");
  await row.getByRole("link", { name: "Deploy" }).click();
  await expect(page).toHaveURL(/\/deployments\//);
});

/**
 * A release that crashes at start fails its health check: the page leads with that step and the
 * release's own last runtime lines (the engine records them in the failed step's message).
 */
test("a release that crashes during its health check leads with that step and its runtime output", async ({ page, api, git, unique, platform, signIn }) => {
  const crashing = {
    "server.js": 'console.log("booting the shop");\nconsole.error("Error: connect ECONNREFUSED 127.0.0.1:5432");\nprocess.exit(1);\n',
  };
  const app = await seedApp(api, git, { project: unique("crash"), repo: unique("repo") }, NODE_APP, crashing);
  await signIn({ email: platform.adminEmail, password: platform.adminPassword });
  await page.goto(`/environments/${app.environmentId}`);
  await page.getByRole("button", { name: "Deploy", exact: true }).click();

  const { deployment } = await DeploymentPage.opened(page);
  await expect(deployment.status()).toHaveAttribute("data-status", "DEPLOYMENT_ERROR", { timeout: 60_000 });
  await expect(deployment.step("web", "health_check")).toHaveAttribute("data-state", "failed");
  const callout = page.getByRole("alert", { name: "web: Health check failed" });
  await expect(callout).toContainText("the process exited with code 1");
  await expect(callout).toContainText("Last runtime output");
  const lines = callout.getByLabel("Last output lines");
  await expect(lines).toContainText("booting the shop");
  await expect(lines).toContainText("Error: connect ECONNREFUSED 127.0.0.1:5432");
  await expectAbove(callout, deployment.steps("web"));
});

/** `first` is drawn above `second`: what the page leads with. */
async function expectAbove(first: Locator, second: Locator): Promise<void> {
  const [a, b] = [await first.boundingBox(), await second.boundingBox()];
  expect(a && b && a.y + a.height <= b.y).toBe(true);
}
