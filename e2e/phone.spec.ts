import type { Page } from "@playwright/test";
import { expect, NODE_APP, test } from "./fixtures/test";
import { seedApp } from "./fixtures/seed";
import { ServicePage, type ServiceTabName } from "./pages/service-page";

/**
 * The dashboard on a phone (issue 15, item 14): from signing in to a service's logs at 390 px
 * wide, no page scrolls sideways and no status badge is cut short; navigation goes through the
 * burger menu. (Every page is also checked with axe by the shared fixture.)
 */
// In the dark scheme, so that axe checks its contrast on every page too (the other journeys run light).
test.use({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, colorScheme: "dark" });

/** Nothing wider than the screen, and every status badge shows its whole text. */
async function expectFitsThePhone(page: Page, where: string) {
  await expect
    .poll(() => page.evaluate(() => document.scrollingElement!.scrollWidth - window.innerWidth), { message: `${where} scrolls sideways` })
    .toBeLessThanOrEqual(0);
  // A badge's label clips with an ellipsis: its text is wider than its box when cut ("RUNN…").
  // (A pixel of slack: both widths are rounded.)
  const clipped = await page.evaluate(() =>
    [...document.querySelectorAll<HTMLElement>("[data-status]")]
      .filter((badge) => badge.offsetParent !== null)
      .flatMap((badge) => [badge, ...badge.querySelectorAll<HTMLElement>(".mantine-Badge-label")])
      .filter((element) => element.scrollWidth > element.clientWidth + 1)
      .map((element) => element.closest("[data-status]")!.textContent),
  );
  expect(clipped, `status badges cut short on ${where}`).toEqual([]);
}

test("a phone signs in and reaches a service's logs with nothing cut or scrolling sideways", async ({ page, api, git, unique, platform, capture }) => {
  const app = await seedApp(api, git, { project: unique("phone"), repo: unique("repo") }, NODE_APP);
  expect((await api.waitForDeployment((await api.deploy(app.environmentId)).deployment.id)).status).toBe("DEPLOYED");

  await test.step("sign in", async () => {
    await page.goto("/signin");
    await expectFitsThePhone(page, "the sign-in page");
    await page.getByLabel("Email").fill(platform.adminEmail);
    await page.getByRole("textbox", { name: "Password" }).fill(platform.adminPassword);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.getByRole("heading", { level: 1, name: "Overview" })).toBeVisible();
  });

  await test.step("the navigation opens from the burger", async () => {
    const navigation = page.getByRole("navigation", { name: "Main navigation" });
    await expect(navigation.getByRole("link", { name: "Audit log" })).not.toBeInViewport();
    await page.getByRole("button", { name: "Open navigation" }).click();
    await navigation.getByRole("link", { name: "Audit log" }).click();
    await expect(page).toHaveURL(/\/audit$/);
    await expectFitsThePhone(page, "the audit log");
    await page.getByRole("button", { name: "Open navigation" }).click();
    await navigation.getByRole("link", { name: "Overview" }).click();
    await expect(page.getByRole("heading", { level: 1, name: "Overview" })).toBeVisible();
  });

  await test.step("overview, project and environment", async () => {
    await expect(page.locator("[data-status]").first()).toBeVisible();
    await expectFitsThePhone(page, "the overview");
    await capture("phone-overview");
    await page.getByRole("link", { name: app.project, exact: true }).first().click();
    await expect(page.getByRole("heading", { level: 1, name: app.project })).toBeVisible();
    await expectFitsThePhone(page, "the project");
    await page.getByRole("link", { name: "dev", exact: true }).first().click();
    await expect(page.getByRole("heading", { level: 1, name: "dev" })).toBeVisible();
    await expect(page.locator("[data-status]").first()).toBeVisible();
    await expectFitsThePhone(page, "the environment");
    await capture("phone-environment");
  });

  await test.step("each of the service's tabs, ending on its logs", async () => {
    await page.getByRole("link", { name: "web", exact: true }).first().click();
    const service = new ServicePage(page);
    await service.expectTab("Overview");
    const tabs: ServiceTabName[] = ["Overview", "Deployments", "Metrics", "Variables", "Settings", "Logs"];
    for (const tab of tabs) {
      await service.open(tab);
      await expectFitsThePhone(page, `the service's ${tab} tab`);
    }
    await expect(page.getByRole("log", { name: "Runtime logs" })).toContainText("listening");
    await expectFitsThePhone(page, "the service's logs");
    await capture("phone-logs");
  });
});
