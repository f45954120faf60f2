import { createHmac, randomUUID } from "node:crypto";
import { expect, test } from "./fixtures/test";

test("connect a git provider: the secret is shown once, and a signed delivery is listed", async ({ page, platform, signIn, unique, capture }) => {
  const name = unique("gh");
  await signIn({ email: platform.adminEmail, password: platform.adminPassword });
  await page.goto("/settings/git");
  await page.getByRole("button", { name: "Connect a provider" }).click();
  const connect = page.getByRole("dialog", { name: "Connect a git provider" });
  await connect.getByLabel("Name").fill(name);
  await connect.getByRole("button", { name: "Connect" }).click();

  const shown = page.getByRole("dialog", { name: `Configure the webhook of ${name}` });
  const url = ((await shown.getByLabel("Webhook URL", { exact: true }).textContent()) ?? "").trim();
  const secret = ((await shown.getByLabel("Webhook secret", { exact: true }).textContent()) ?? "").trim();
  expect(url).toMatch(/\/api\/hooks\/[0-9a-f-]{36}$/);
  expect(secret.length).toBeGreaterThan(20);
  await capture("git-connected");
  await shown.getByRole("button", { name: "I have configured it" }).click();
  // Shown once: the page itself never shows the secret again.
  await expect(page.getByText(secret)).toHaveCount(0);

  // A provider's delivery, signed the GitHub way, shows in the connection's deliveries.
  const body = JSON.stringify({ zen: "Keep it logically awesome.", hook_id: 1 });
  const delivery = randomUUID();
  const answer = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-github-event": "ping",
      "x-github-delivery": delivery,
      "x-hub-signature-256": `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`,
    },
    body,
  });
  expect(answer.status).toBe(202);
  await page.reload();
  const row = page.getByRole("row").filter({ hasText: delivery });
  await expect(row).toContainText("ping");
  // An event Slipway does not act on is stored, and marked so.
  await expect(row).toContainText("Ignored");
  await capture("git-deliveries");
});
