import { expect, test } from "../../e2e/fixtures/test";

// Deliberately failing: test/canary/run checks that `playwright test`, with the journeys' real
// global setup (the whole platform), exits non-zero when a journey fails. Never part of `npm test`.
test("fails on purpose, so that the runner's exit code can be checked", async ({ page }) => {
  await page.goto("/");
  await expect(page.getByRole("heading", { name: "A heading no page has" })).toBeVisible({ timeout: 1_000 });
});

// Deliberately failing: the page-quality checks every journey runs must report a page that keeps
// no title (axe's document-title), even though they wait out the title swap of a navigation.
test("fails on purpose: a page without a title fails the page quality checks", async ({ page, signIn, platform }) => {
  await signIn({ email: platform.adminEmail, password: platform.adminPassword });
  await page.goto("/");
  await expect(page).toHaveTitle(/Slipway/);
  // Kept without one: the dashboard re-renders its metadata now and then (a live status refresh),
  // which put a title back within the checks' wait once, and the canary passed.
  await page.evaluate(() => {
    const strip = () => document.querySelectorAll("title").forEach((title) => title.remove());
    strip();
    new MutationObserver(strip).observe(document.documentElement, { childList: true, subtree: true });
  });
});
