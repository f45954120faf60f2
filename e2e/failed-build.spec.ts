import path from "node:path";
import { fileURLToPath } from "node:url";
import { DeploymentPage } from "./pages/deployment-page";
import { expect, test } from "./fixtures/test";
import { seedApp } from "./fixtures/seed";

const BROKEN_BUILD = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../test/fixtures/apps/broken-build");

test("a failed build stops at its step, says why, and keeps its output", async ({ page, api, git, unique, platform, signIn, capture }) => {
  const app = await seedApp(api, git, { project: unique("broken"), repo: unique("repo") }, BROKEN_BUILD);
  await signIn({ email: platform.adminEmail, password: platform.adminPassword });
  await page.goto(`/environments/${app.environmentId}`);
  await page.getByRole("button", { name: "Deploy", exact: true }).click();

  const { deployment } = await DeploymentPage.opened(page);
  await expect(deployment.status()).toHaveAttribute("data-status", "BUILD_ERROR", { timeout: 60_000 });
  await expect(deployment.step("web", "clone")).toHaveAttribute("data-state", "succeeded");
  await expect(deployment.step("web", "build")).toHaveAttribute("data-state", "failed");
  await expect(deployment.step("web", "start")).toHaveAttribute("aria-label", "Start: Skipped");
  await expect(page.getByRole("alert").filter({ hasText: "The build failed" })).toContainText("build failed");
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
