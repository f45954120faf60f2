import { DeploymentPage } from "./pages/deployment-page";
import { ServicePage } from "./pages/service-page";
import { expect, NODE_APP, test } from "./fixtures/test";

/**
 * The main journey, through the dashboard: a project, an environment and an application from a
 * git repository served on 127.0.0.1, a secret variable, a deploy watched step by step until the
 * app answers on its URL, a redeploy after a new commit, and the audit log of it all.
 */
test("create an app from git, deploy it with a secret, redeploy a new commit, and audit it", async ({ page, platform, git, unique, signIn, capture }) => {
  const project = unique("shop");
  const repo = unique("repo");
  const firstCommit = await git.createRepo(repo, NODE_APP);
  await signIn({ email: platform.adminEmail, password: platform.adminPassword });
  let environmentId = "";

  await test.step("create a project, an environment and a service from git", async () => {
    await page.goto("/");
    await page.getByRole("button", { name: "New project" }).first().click();
    await page.getByLabel("Project name").fill(project);
    await page.getByRole("button", { name: "Create project" }).click();
    await expect(page.getByRole("heading", { level: 1, name: project })).toBeVisible();

    await page.getByRole("button", { name: "New environment" }).first().click();
    await page.getByLabel("Environment name").fill("dev");
    await page.getByRole("button", { name: "Create environment" }).click();
    await expect(page.getByRole("heading", { level: 1, name: "dev" })).toBeVisible();
    environmentId = /\/environments\/([0-9a-f-]{36})/.exec(page.url())![1]!;

    await page.getByRole("button", { name: "New service" }).first().click();
    await page.getByLabel("Service name").fill("web");
    await page.getByLabel("Git URL").fill(git.url(repo));
    await page.getByRole("button", { name: "Create service" }).click();
    await expect(page.getByRole("heading", { level: 1, name: "web" })).toBeVisible();
  });

  await test.step("set a secret variable", async () => {
    await new ServicePage(page).open("Variables");
    await page.getByRole("button", { name: "Add variable" }).click();
    const dialog = page.getByRole("dialog", { name: "Add variable" });
    await dialog.getByLabel("Key").fill("GREETING");
    await dialog.getByLabel("Value").fill("hello-from-a-secret");
    await dialog.getByLabel("Secret").check();
    await dialog.getByRole("button", { name: "Save variable" }).click();
    await expect(dialog).toBeHidden();
    const row = page.getByRole("table", { name: "service variables" }).getByRole("row", { name: /GREETING/ });
    await expect(row).toBeVisible();
    // Write-only: the value never comes back to the browser.
    await expect(page.getByText("hello-from-a-secret")).toHaveCount(0);
  });

  await test.step("deploy and watch the steps and logs reach DEPLOYED", async () => {
    await page.getByRole("button", { name: "Deploy", exact: true }).click();
    const { deployment } = await DeploymentPage.opened(page);
    await deployment.expectDeployed("web");
    await expect(page.getByText(firstCommit.slice(0, 7)).first()).toBeVisible();
    await expect(deployment.logs.locator("[data-seq]").first()).toBeAttached();
    await capture("deployed");
  });

  await test.step("open the app on its URL", async () => {
    await page.goto(`http://web-dev-${project}.localhost:${platform.routerPort}/`);
    await expect(page.locator("body")).toContainText('"version":"1"');
    await expect(page.locator("body")).toContainText('"greeting":"hello-from-a-secret"');
    await capture("app-version-1");
  });

  const secondCommit = await git.pushDirectory(repo, NODE_APP, { "version.txt": "2\n" });

  await test.step("redeploy after a new commit", async () => {
    await page.goBack();
    await page.goBack();
    await expect(page.getByRole("heading", { level: 1, name: "web" })).toBeVisible();
    await page.getByRole("button", { name: "Redeploy", exact: true }).click();
    const { deployment } = await DeploymentPage.opened(page);
    await deployment.expectDeployed("web");
    await expect(page.getByText(secondCommit.slice(0, 7)).first()).toBeVisible();
    await capture("redeployed");
    await page.goto(`http://web-dev-${project}.localhost:${platform.routerPort}/`);
    await expect(page.locator("body")).toContainText('"version":"2"');
  });

  await test.step("see the audit entries", async () => {
    await page.goto("/audit");
    const events = page.getByRole("table", { name: "audit events" });
    // Other journeys share the platform: look at this environment's entries (named, linked to its page).
    const thisEnvironment = page.locator(`a[href="/environments/${environmentId}"]`);
    await expect(events.getByRole("row").filter({ hasText: "deployment.deploy" }).filter({ has: thisEnvironment })).toHaveCount(2);
    await expect(events.getByRole("row").filter({ hasText: "environment.create" }).filter({ has: thisEnvironment })).toHaveCount(1);
    // A deployment's row names the service it acted on; the environment's own rows name it alone.
    await expect(events.getByRole("row").filter({ hasText: "deployment.deploy" }).locator(thisEnvironment).first()).toHaveText(`web in ${project}/dev`);
    await expect(events.getByRole("row").filter({ hasText: "environment.create" }).locator(thisEnvironment)).toHaveText(`${project}/dev`);
    await expect(events.getByRole("row").filter({ hasText: "project.create" }).first()).toBeVisible();
    await expect(events.getByRole("row").filter({ hasText: "variable.create" }).first()).toBeVisible();
    await expect(events).not.toContainText("hello-from-a-secret");
    await capture("audit");
  });
});
