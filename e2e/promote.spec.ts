import { DeploymentPage } from "./pages/deployment-page";
import { expect, NODE_APP, test } from "./fixtures/test";

/**
 * Promoting from the environment page (issue 15, item 1): production runs v1, staging v2 (both
 * deployed through REST, what this journey is not about); "Promote to…" on staging, choosing
 * production, shows the service and the commit it will deploy, and production then serves what
 * staging runs.
 */
test("promote staging to production from the environment page", async ({ page, platform, api, git, unique, signIn, capture }) => {
  const project = unique("promo");
  const repo = unique("repo");
  await git.createRepo(repo, NODE_APP);
  const { id: projectId } = await api.createProject(project);
  const staging = await api.createEnvironment(projectId, "staging");
  const production = await api.createEnvironment(projectId, "production");
  await api.createService(staging.id, "web", git.url(repo));
  await api.createService(production.id, "web", git.url(repo));
  const url = (environment: string) => `http://web-${environment}-${project}.localhost:${platform.routerPort}/`;

  expect((await api.waitForDeployment((await api.deploy(production.id)).deployment.id)).status).toBe("DEPLOYED");
  await git.pushDirectory(repo, NODE_APP, { "version.txt": "2\n" });
  const onStaging = await api.waitForDeployment((await api.deploy(staging.id)).deployment.id);
  expect(onStaging.status).toBe("DEPLOYED");
  const v2 = Object.values(onStaging.commits)[0]!;

  await signIn({ email: platform.adminEmail, password: platform.adminPassword });

  await test.step("production runs v1, staging v2", async () => {
    await page.goto(url("production"));
    await expect(page.locator("body")).toContainText('"version":"1"');
    await page.goto(url("staging"));
    await expect(page.locator("body")).toContainText('"version":"2"');
  });

  await test.step("promote staging to production, seeing what will be deployed first", async () => {
    await page.goto(`/environments/${staging.id}`);
    await expect(page.getByRole("heading", { level: 1, name: "staging" })).toBeVisible();
    await page.getByRole("button", { name: "Promote to…" }).click();
    const dialog = page.getByRole("dialog", { name: "Promote staging" });
    await dialog.getByLabel("Target environment").selectOption({ label: "production (development)" });
    await expect(dialog.getByRole("list", { name: "What the promotion deploys" })).toHaveText(`web at commit ${v2.slice(0, 7)}`);
    await capture("promote-confirmation");
    await dialog.getByRole("button", { name: "Promote to production" }).click();

    const { deployment, id } = await DeploymentPage.opened(page);
    expect((await api.deployment(id)).environmentId).toBe(production.id);
    await expect(deployment.status()).toHaveAttribute("data-status", "DEPLOYED", { timeout: 60_000 });
    await capture("promoted");
  });

  await test.step("production serves what staging runs", async () => {
    await page.goto(url("production"));
    await expect(page.locator("body")).toContainText('"version":"2"');
  });
});
