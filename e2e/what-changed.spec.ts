import { DeploymentPage } from "./pages/deployment-page";
import { expect, NODE_APP, test } from "./fixtures/test";
import { seedApp } from "./fixtures/seed";

const SECRET_V1 = "sk-e2e-first-7c41d0";
const SECRET_V2 = "sk-e2e-second-93be2a";

/**
 * "What changed" on a deployment's page (issue 15, item 2): a first deployment through REST, then
 * a new commit, a changed variable and secret, a new key and a changed setting; the next deploy,
 * started from the dashboard, shows the commit range and the changed keys and field, who started
 * it, and never a variable's value.
 */
test("a deployment shows its commit range, the configuration and the variable keys that changed, never a value", async ({
  page,
  platform,
  api,
  git,
  unique,
  signIn,
  capture,
}) => {
  const app = await seedApp(api, git, { project: unique("changed"), repo: unique("repo") }, NODE_APP);
  await api.setVariable({ scope: "SERVICE", targetId: app.serviceId, key: "GREETING", value: "hello-v1" });
  await api.setVariable({ scope: "SERVICE", targetId: app.serviceId, key: "API_KEY", value: SECRET_V1, secret: true });
  const first = await api.waitForDeployment((await api.deploy(app.environmentId)).deployment.id);
  expect(first.status).toBe("DEPLOYED");
  const v1 = first.commits[app.serviceId]!;

  const v2 = await git.pushDirectory(app.repo, NODE_APP, { "version.txt": "2\n" });
  await api.setVariable({ scope: "SERVICE", targetId: app.serviceId, key: "GREETING", value: "hello-v2" });
  await api.setVariable({ scope: "SERVICE", targetId: app.serviceId, key: "API_KEY", value: SECRET_V2, secret: true });
  await api.setVariable({ scope: "SERVICE", targetId: app.serviceId, key: "FEATURE_FLAG", value: "on" });
  await api.updateService(app.serviceId, { healthCheckTimeoutSeconds: 90 });

  await signIn({ email: platform.adminEmail, password: platform.adminPassword });
  await page.goto(`/environments/${app.environmentId}`);
  await page.getByRole("button", { name: "Redeploy", exact: true }).click();
  const { deployment } = await DeploymentPage.opened(page);
  await deployment.expectDeployed("web");

  await test.step("who started it", async () => {
    await expect(page.getByLabel("Triggered by")).toHaveText(`Dashboard · ${platform.adminEmail}`);
  });

  const changes = page.getByRole("region", { name: "Changes of web" });
  await test.step("the commit range since the last successful deployment", async () => {
    await expect(changes).toContainText(`Since deployment ${first.id.slice(0, 8)}`);
    const range = changes.getByLabel("Commit range of web");
    await expect(range).toContainText(`${v1.slice(0, 7)}..${v2.slice(0, 7)}`);
    // A repository on a host that is no known provider has no compare page to link to.
    await expect(range.getByRole("link")).toHaveCount(0);
  });

  await test.step("the configuration field and the variable keys that changed", async () => {
    const config = changes.getByRole("table", { name: "Configuration changed in web" });
    await expect(config.getByRole("row", { name: /healthCheckTimeoutSeconds/ })).toContainText(/60.*90/);
    const keys = changes.getByRole("list", { name: "Variables changed in web" });
    await expect(keys.getByRole("listitem")).toHaveCount(3);
    await expect(keys.getByRole("listitem", { name: "API_KEY changed" })).toContainText("secret");
    await expect(keys.getByRole("listitem", { name: "GREETING changed" })).toBeVisible();
    await expect(keys.getByRole("listitem", { name: "FEATURE_FLAG added" })).toBeVisible();
    await capture("what-changed");
  });

  await test.step("no variable's value anywhere on the page", async () => {
    const text = await page.locator("body").innerText();
    for (const value of [SECRET_V1, SECRET_V2, "hello-v1", "hello-v2"]) expect(text).not.toContain(value);
    expect(await page.content()).not.toContain(SECRET_V2);
  });

  await test.step("the previous deployment is one click away", async () => {
    await changes.getByRole("link", { name: `deployment ${first.id.slice(0, 8)}` }).click();
    await expect(page).toHaveURL(new RegExp(`/deployments/${first.id}$`));
    await expect(page.getByRole("region", { name: "Changes of web" })).toContainText("Its first successful deployment");
  });
});
