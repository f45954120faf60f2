import { expect, test } from "./fixtures/test";

test("the first boot's admin signs in through the form and lands on the overview", async ({ page, platform, capture }) => {
  await page.goto("/");
  // Signed out, the dashboard sends visitors to the sign-in page.
  await expect(page).toHaveURL(/\/signin/);
  await page.getByLabel("Email").fill(platform.adminEmail);
  await page.getByRole("textbox", { name: "Password" }).fill("not-the-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert", { name: "Not signed in" })).toContainText("Wrong email or password");

  await page.getByRole("textbox", { name: "Password" }).fill(platform.adminPassword);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Overview" })).toBeVisible();
  await expect(page.getByRole("button", { name: `Account: ${platform.adminEmail}` })).toBeVisible();
  await capture("overview-after-sign-in");
});

test("every page names its icon, and /favicon.ico answers with it", async ({ page }) => {
  await page.goto("/signin");
  const href = await page.locator('link[rel="icon"]').first().getAttribute("href");
  expect(href).toMatch(/^\/icon\.svg/);
  for (const path of [href!, "/favicon.ico"]) {
    const response = await page.request.get(path);
    expect(response.status(), path).toBe(200);
    expect(response.headers()["content-type"], path).toContain("image/svg+xml");
  }
});
