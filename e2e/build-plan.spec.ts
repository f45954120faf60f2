import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect, test } from "./fixtures/test";
import { seedApp } from "./fixtures/seed";
import { ServicePage } from "./pages/service-page";

const VITE_SPA = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../test/fixtures/apps/vite-spa");

/** Issue 14: a service's settings show the plan a deployment would follow, read from its branch before deploying, and override each step of it. */
test("the service page shows what is detected in the branch, why, and how it is built and served", async ({
  page,
  api,
  git,
  unique,
  platform,
  signIn,
  capture,
}) => {
  const app = await seedApp(api, git, { project: unique("spa"), repo: unique("repo") }, VITE_SPA);
  await signIn({ email: platform.adminEmail, password: platform.adminPassword });
  await ServicePage.goto(page, app.serviceId, "Settings");

  const panel = page.getByLabel("Build plan");
  await expect(panel).toContainText("Vite SPA");
  await expect(panel.getByRole("listitem").filter({ hasText: "react routes on the client" })).toBeVisible();
  await expect(panel.getByRole("listitem").filter({ hasText: "npm install --include=dev --no-audit --no-fund" })).toBeVisible();
  await expect(panel.getByRole("listitem").filter({ hasText: "npm run build" })).toBeVisible();
  await expect(panel).toContainText("The static server serves dist/, answering client routes with index.html");
  await capture("build-plan");

  // The output directory set in the settings is the one the plan serves.
  await page.getByLabel("Output directory").fill("prebuilt");
  await page.getByRole("button", { name: "Save settings" }).click();
  await expect(panel).toContainText("The static server serves prebuilt/");

  // The install command and the toolchain versions set here are the plan's too; a bad version is refused beside its field.
  await expect(panel).toContainText("The engine's default (none named)");
  await page.getByLabel("Install command").fill("npm ci");
  await page.getByLabel("Node version").fill("twenty-two");
  await page.getByRole("button", { name: "Save settings" }).click();
  await expect(page.getByText("Expected a Node version or semver range, such as 22 or >=20 <23")).toBeVisible();
  await page.getByLabel("Node version").fill(">=20 <23");
  await page.getByLabel("Python version").fill("3.12");
  await page.getByRole("button", { name: "Save settings" }).click();
  await expect(panel.getByRole("listitem").filter({ hasText: /^npm ci$/ })).toBeVisible();
  await expect(panel).toContainText(">=20 <23, from the service's nodeVersion");
  await page.reload();
  await expect(page.getByLabel("Install command")).toHaveValue("npm ci");
  await expect(page.getByLabel("Node version")).toHaveValue(">=20 <23");
  await expect(page.getByLabel("Python version")).toHaveValue("3.12");
});
