import { expect, NODE_APP, test } from "./fixtures/test";
import { seedApp } from "./fixtures/seed";
import { ServicePage, type ServiceTabName } from "./pages/service-page";

/**
 * The service page's tabs (issue 15, items 6 and 8): each tab has its own URL that opens it
 * directly, switching tabs changes the URL and Back returns to the previous tab; Settings is one
 * form with one Save; the running
 * commit's copy button puts the full SHA on the clipboard; the audit log names the service and
 * its link leads to the service's page.
 */
test("service tabs have their own URLs, copy the full SHA, and the audit log links to the service", async ({
  page,
  context,
  api,
  git,
  unique,
  platform,
  signIn,
  capture,
}) => {
  const app = await seedApp(api, git, { project: unique("tabs"), repo: unique("repo") }, NODE_APP);
  const deployed = await api.waitForDeployment((await api.deploy(app.environmentId)).deployment.id);
  expect(deployed.status).toBe("DEPLOYED");
  const sha = deployed.commits[app.serviceId]!;
  expect(sha).toMatch(/^[0-9a-f]{40}$/);
  await signIn({ email: platform.adminEmail, password: platform.adminPassword });

  await test.step("each tab's URL opens that tab", async () => {
    // What only that tab shows, to know the right one opened and not just the header.
    const content: Record<ServiceTabName, () => ReturnType<typeof page.getByRole>> = {
      Overview: () => page.getByRole("heading", { level: 2, name: "Recent deployments" }),
      Deployments: () => page.getByRole("heading", { level: 2, name: "Deployments", exact: true }),
      Logs: () => page.getByRole("log", { name: "Runtime logs" }),
      Metrics: () => page.getByRole("heading", { level: 2, name: "Metrics" }),
      Shell: () => page.getByRole("region", { name: "Terminal" }),
      Variables: () => page.getByRole("heading", { level: 2, name: "Service variables" }),
      Domains: () => page.getByRole("heading", { level: 2, name: "Custom domains" }),
      Settings: () => page.getByRole("button", { name: "Save settings" }),
    };
    for (const [tab, shown] of Object.entries(content) as [ServiceTabName, (typeof content)[ServiceTabName]][]) {
      const service = await ServicePage.goto(page, app.serviceId, tab);
      await expect(shown()).toBeVisible();
      await expect(page.getByRole("heading", { level: 1, name: "web" })).toBeVisible();
      await expect(service.tabs.getByRole("tab")).toHaveCount(8);
    }
    await capture("settings-tab");
  });

  await test.step("switching tabs changes the URL, Back returns to the previous tab", async () => {
    const service = await ServicePage.goto(page, app.serviceId);
    await service.open("Logs");
    await service.open("Settings");
    await page.goBack();
    await service.expectTab("Logs");
    await expect(page.getByRole("log", { name: "Runtime logs" })).toBeVisible();
    await page.goBack();
    await service.expectTab("Overview");
    await page.goForward();
    await service.expectTab("Logs");

    // From the keyboard: arrows move between the tabs, Enter opens one.
    await service.tab("Logs").focus();
    await page.keyboard.press("ArrowRight");
    await expect(service.tab("Metrics")).toBeFocused();
    await page.keyboard.press("Enter");
    await service.expectTab("Metrics");
  });

  await test.step("Settings saves the build settings and deploy on push with one Save", async () => {
    await ServicePage.goto(page, app.serviceId, "Settings");
    await expect(page.getByRole("button", { name: /^Save/ })).toHaveCount(1);
    await page.getByRole("textbox", { name: "Start command" }).fill("node server.js");
    await page.getByRole("switch", { name: "Deploy tags" }).check();
    await page.getByRole("button", { name: "Save settings" }).click();
    await expect(page.getByText(/^Settings saved/)).toBeVisible();
    await page.reload();
    await expect(page.getByRole("textbox", { name: "Start command" })).toHaveValue("node server.js");
    await expect(page.getByRole("switch", { name: "Deploy tags" })).toBeChecked();
  });

  await test.step("the running commit's copy button copies the full SHA", async () => {
    await context.grantPermissions(["clipboard-read", "clipboard-write"]);
    await ServicePage.goto(page, app.serviceId);
    const shown = page.getByText(sha.slice(0, 7), { exact: true }).first();
    await expect(shown).toBeVisible();
    await page
      .getByRole("button", { name: `Copy commit ${sha.slice(0, 7)}` })
      .first()
      .click();
    await expect(page.getByRole("tooltip", { name: "Copied" })).toBeVisible();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(sha);
    await capture("overview-tab");
  });

  await test.step("the audit log names the service and links to it", async () => {
    await page.goto("/audit");
    await page.getByLabel("Target id").fill(app.serviceId);
    await page.getByRole("button", { name: "Apply filters" }).click();
    const events = page.getByRole("table", { name: "audit events" });
    const created = events.getByRole("row").filter({ hasText: "service.create" });
    await expect(created).toHaveCount(1);
    // Its path, not its id.
    await expect(created).not.toContainText(app.serviceId);
    await capture("audit-names");
    await created.getByRole("link", { name: `${app.project}/dev/web`, exact: true }).click();
    await expect(page).toHaveURL(new RegExp(`/services/${app.serviceId}$`));
    await expect(page.getByRole("heading", { level: 1, name: "web" })).toBeVisible();
  });
});
