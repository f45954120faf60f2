import { expect, test } from "../../e2e/fixtures/test";

// Deliberately failing: test/canary/run checks that `playwright test`, with the journeys' real
// global setup (the whole platform), exits non-zero when a journey fails. Never part of `npm test`.
test("fails on purpose, so that the runner's exit code can be checked", async ({ page }) => {
  await page.goto("/");
  await expect(page.getByRole("heading", { name: "A heading no page has" })).toBeVisible({ timeout: 1_000 });
});
