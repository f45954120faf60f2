import { DeploymentPage } from "./pages/deployment-page";
import { expect, NODE_APP, test } from "./fixtures/test";
import { seedApp } from "./fixtures/seed";

/**
 * Rolling back from the history (issue 15, item 1): v1 then v2 of an app deployed (through REST,
 * what this journey is not about), "Roll back to this" on v1, a confirmation naming its commit, a
 * new deployment that serves v1 again; a VIEWER sees the history without the control.
 */
test("roll back to an earlier deployment from the history; a VIEWER cannot", async ({ page, platform, api, git, unique, seedUser, signIn, capture }) => {
  const app = await seedApp(api, git, { project: unique("back"), repo: unique("repo") }, NODE_APP);
  const first = await api.waitForDeployment((await api.deploy(app.environmentId)).deployment.id);
  expect(first.status).toBe("DEPLOYED");
  const v1 = first.commits[app.serviceId]!;
  await git.pushDirectory(app.repo, NODE_APP, { "version.txt": "2\n" });
  const second = await api.waitForDeployment((await api.deploy(app.environmentId)).deployment.id);
  expect(second.status).toBe("DEPLOYED");
  const appUrl = `http://web-dev-${app.project}.localhost:${platform.routerPort}/`;

  await signIn({ email: platform.adminEmail, password: platform.adminPassword });

  await test.step("roll back to v1 from the environment's history", async () => {
    await page.goto(`/environments/${app.environmentId}`);
    const history = page.getByRole("table", { name: "Deployment history" });
    // The latest success is what runs: nothing to roll back to there.
    const rollBack = history.locator(`tr[data-deployment-id="${first.id}"]`).getByRole("button", { name: /^Roll back to this/ });
    await expect(rollBack).toBeVisible();
    await expect(history.locator(`tr[data-deployment-id="${second.id}"]`).getByRole("button", { name: /^Roll back to this/ })).toHaveCount(0);
    await capture("history");
    await rollBack.click();

    const dialog = page.getByRole("dialog", { name: `Roll back to deployment ${first.id.slice(0, 8)}?` });
    await expect(dialog.getByRole("list", { name: "What the rollback redeploys" })).toContainText(`web at commit ${v1.slice(0, 7)}`);
    await capture("rollback-confirmation");
    await dialog.getByRole("button", { name: "Roll back", exact: true }).click();

    const { deployment, id } = await DeploymentPage.opened(page);
    expect(id).not.toBe(first.id);
    await expect(page.getByRole("heading", { level: 1, name: `Roll back web to ${first.id.slice(0, 8)}` })).toBeVisible();
    await expect(deployment.status()).toHaveAttribute("data-status", "DEPLOYED", { timeout: 60_000 });
    await expect(page.getByText(v1.slice(0, 7)).first()).toBeVisible();
    await capture("rolled-back");

    await page.getByRole("link", { name: `Rollback to ${first.id.slice(0, 8)}` }).click();
    await expect(page).toHaveURL(new RegExp(`/deployments/${first.id}$`));
  });

  await test.step("the app serves v1 again", async () => {
    await page.goto(appUrl);
    await expect(page.locator("body")).toContainText('"version":"1"');
  });

  await test.step("a VIEWER sees the history but no rollback control", async () => {
    const viewer = await seedUser("VIEWER");
    await signIn(viewer);
    await page.goto(`/environments/${app.environmentId}`);
    const history = page.getByRole("table", { name: "Deployment history" });
    const row = history.locator(`tr[data-deployment-id="${first.id}"]`);
    await expect(row).toBeVisible();
    await expect(page.getByRole("button", { name: /Roll back/ })).toHaveCount(0);
    // The rollback's row links to itself and to the deployment it went back to.
    const rollbackRow = history.locator("tr", { has: page.getByRole("link", { name: "Roll back web", exact: true }) });
    await expect(rollbackRow.getByRole("link", { name: `deployment ${first.id.slice(0, 8)}, rolled back to` })).toHaveAttribute(
      "href",
      `/deployments/${first.id}`,
    );
    await page.goto(`/deployments/${first.id}`);
    await expect(page.getByRole("heading", { level: 1, name: /^Deploy/ })).toBeVisible();
    await expect(page.getByRole("button", { name: /Roll back/ })).toHaveCount(0);
  });
});
