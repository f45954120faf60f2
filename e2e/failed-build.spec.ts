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

/**
 * Services of a stage fail apart: a deployment of three where two fail leads with both, each with
 * why and its last lines (in plain text: the crash prints in colour), and says the third went live.
 */
test("a deployment where two of three services fail names both, with their reasons, and says how many went live", async ({
  page,
  api,
  git,
  unique,
  platform,
  signIn,
}) => {
  const app = await seedApp(api, git, { project: unique("partly"), repo: unique("repo") }, BROKEN_BUILD);
  const crashRepo = unique("crash");
  const crashSha = await git.createRepo(crashRepo, NODE_APP, {
    "server.js": 'console.error("\\u001b[31mError: connect ECONNREFUSED 127.0.0.1:5432\\u001b[39m");\nprocess.exit(1);\n',
  });
  await api.createService(app.environmentId, "api", git.url(crashRepo));
  const docsRepo = unique("docs");
  await git.createRepo(docsRepo, NODE_APP);
  await api.createService(app.environmentId, "docs", git.url(docsRepo));
  // Started through the API: this journey is about the page that shows the outcome.
  const started = await api.deploy(app.environmentId);
  await signIn({ email: platform.adminEmail, password: platform.adminPassword });
  await page.goto(`/deployments/${started.deployment.id}`);

  const { deployment } = await DeploymentPage.opened(page);
  await expect(deployment.status()).toHaveAttribute("data-status", /_ERROR$/, { timeout: 90_000 });
  // Which of the two failed first decides the order; both are named, and the one that went live is counted.
  const callout = page.getByRole("alert", { name: /^2 of 3 services failed: (web, api|api, web); 1 is live$/ });
  await expect(callout).toBeVisible();
  const web = callout.getByRole("group", { name: "web: Build failed" });
  const crashed = callout.getByRole("group", { name: "api: Health check failed" });
  await expect(web).toContainText("build command `npm run build` failed (exit 1)");
  await expect(crashed).toContainText("the process exited with code 1");
  for (const [failure, line] of [
    [web, "error: cannot find module './missing'"],
    [crashed, "Error: connect ECONNREFUSED 127.0.0.1:5432"],
  ] as const) {
    const lines = failure.getByLabel("Last output lines");
    // The first failure's lines are open; the other's are a click away.
    if (!(await lines.isVisible())) await failure.locator("summary").click();
    await expect(lines).toContainText(line);
    expect(await lines.textContent()).not.toContain("[31m");
  }
  // Each commit chip says whose commit it is.
  await expect(page.getByLabel("Commit of api")).toContainText(crashSha.slice(0, 7));
  await expect(page.getByLabel("Commit of docs")).toBeVisible();
  await expect(deployment.step("docs", "switch")).toHaveAttribute("data-state", "succeeded");
});

/** `first` is drawn above `second`: what the page leads with. */
async function expectAbove(first: Locator, second: Locator): Promise<void> {
  const [a, b] = [await first.boundingBox(), await second.boundingBox()];
  expect(a && b && a.y + a.height <= b.y).toBe(true);
}
