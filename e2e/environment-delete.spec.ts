import { expect, NODE_APP, test } from "./fixtures/test";
import { seedApp } from "./fixtures/seed";

/**
 * A newcomer's environment from first service to deletion (h4 F5, F11, F13): the page's Deploy
 * button is in its header, beside Clone and Delete; a new service's toast points at that
 * service's own Deploy button; the audit log names the service a deployment acted on; deleting
 * the environment opens the project's page and says when the deletion is done (its DELETE
 * deployment goes with the environment, so there is no deployment page to land on).
 */
test("deploy from the header, read the audit log by service name, and delete the environment", async ({
  page,
  api,
  git,
  platform,
  unique,
  signIn,
  capture,
}) => {
  // A service's creation, a stop and a whole environment's deletion through the engine, one after the other.
  test.slow();
  const names = { project: unique("envdel"), repo: unique("envdel-repo") };
  const app = await seedApp(api, git, names, NODE_APP);
  await signIn({ email: platform.adminEmail, password: platform.adminPassword });

  await test.step("the environment's Deploy button is in its header, beside Delete", async () => {
    await page.goto(`/environments/${app.environmentId}`);
    await expect(page.getByRole("heading", { level: 1, name: "dev" })).toBeVisible();
    const deploy = await page.getByRole("button", { name: "Deploy", exact: true }).boundingBox();
    const remove = await page.getByRole("button", { name: "Delete environment" }).boundingBox();
    const services = await page.getByRole("heading", { level: 2, name: "Services" }).boundingBox();
    // In the header's row of actions, above the page's first section.
    expect(Math.abs(deploy!.y - remove!.y)).toBeLessThan(deploy!.height);
    expect(deploy!.y + deploy!.height).toBeLessThan(services!.y);
  });

  await test.step("a new service's toast points at its own Deploy button", async () => {
    await page.getByRole("button", { name: "New service" }).first().click();
    await page.getByLabel("Service name").fill("api");
    await page.getByLabel("Git URL").fill(git.url(names.repo));
    await page.getByRole("button", { name: "Create service" }).click();
    // Saving checks the repository answers (git ls-remote): slower than a page on a busy machine.
    await expect(page.getByText("Service api created: its Deploy button, at the top of its page, builds and starts it.")).toBeVisible({
      timeout: 45_000,
    });
    await expect(page.getByRole("heading", { level: 1, name: "api" })).toBeVisible();
    await expect(page.getByRole("button", { name: "Deploy", exact: true })).toBeVisible();
  });

  await test.step("the audit log names the service a deployment acted on", async () => {
    // A stop of one service, requested through REST: quick, and what the log must name.
    const response = await api.request.fetch("/api/v1/deployments", {
      method: "POST",
      headers: { authorization: `Bearer ${platform.apiToken}` },
      data: { environmentId: app.environmentId, action: "STOP", serviceIds: [app.serviceId] },
    });
    expect(response.ok()).toBe(true);
    const { deployment } = (await response.json()) as { deployment: { id: string } };
    await api.waitForDeployment(deployment.id);

    await page.goto("/audit");
    // The platform is shared by every journey: the row is this project's stop.
    const target = page.getByRole("link", { name: `web in ${names.project}/dev` });
    const row = page
      .getByRole("row")
      .filter({ has: page.getByText("deployment.stop", { exact: true }) })
      .filter({ has: target });
    await expect(row).toHaveCount(1);
    await row.getByRole("button", { name: /^Show changes of deployment\.stop/ }).click();
    const servicesLine = page.getByLabel("Services acted on");
    await expect(servicesLine).toHaveText(`Service: ${names.project}/dev/web`);
    await expect(servicesLine.getByRole("link", { name: `${names.project}/dev/web` })).toHaveAttribute("href", `/services/${app.serviceId}`);
    await capture("audit-names-the-service");
  });

  await test.step("deleting the environment opens the project's page and says when it is gone", async () => {
    await page.goto(`/environments/${app.environmentId}`);
    await page.getByRole("button", { name: "Delete environment" }).click();
    const dialog = page.getByRole("dialog", { name: "Delete environment" });
    await dialog.getByRole("textbox").fill("dev");
    await dialog.getByRole("button", { name: "Delete environment" }).click();

    await expect(page).toHaveURL(new RegExp(`/projects/${app.projectId}$`));
    await expect(page.getByRole("heading", { level: 1, name: names.project })).toBeVisible();
    // "Deleting environment dev" shows while the DELETE runs: one that removes nothing can end before a busy page has rendered.
    // The DELETE deployment's end removes the environment: the notification says so, the project lists it no more.
    await expect(page.getByText("Environment dev deleted")).toBeVisible({ timeout: 60_000 });
    await expect(page.getByRole("main").getByRole("link", { name: "dev", exact: true })).toHaveCount(0);
    await expect(page.getByText(/not found/i)).toHaveCount(0);
    await capture("environment-deleted");
  });
});
