import http from "node:http";
import { seedApp } from "./fixtures/seed";
import { expect, NODE_APP, test } from "./fixtures/test";
import { ServicePage } from "./pages/service-page";

/**
 * Sleep when idle (issue 16, part 3), through the dashboard: an environment's default set on its
 * page and audited; a service set to sleep after a minute of no request in its Settings, seen
 * Sleeping on its page, then woken by a request to its URL, which gets the app's answer while the
 * page shows it running again. The platform's engine counts a minute as 10 s
 * (SLIPWAY_SLEEP_MINUTE_MS in fixtures/platform.ts): the real mechanism, in seconds.
 */

type Answer = { version: string; release: string; instance: string };

/**
 * A GET through the router to the app's `*.localhost` name, as an API client sends it (no
 * `text/html`: held during a wake, never shown the waiting page). Node cannot resolve
 * `*.localhost` (Chromium can), so the name goes in the Host header to the router's address.
 */
function getThroughRouter(routerPort: number, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: "127.0.0.1", port: routerPort, path: "/", headers: { host, accept: "application/json" }, agent: false }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on("error", reject);
  });
}

test("a service set to sleep falls asleep, shows Sleeping, and a request wakes it and gets the app's answer", async ({
  page,
  platform,
  api,
  git,
  unique,
  signIn,
  capture,
}) => {
  test.setTimeout(180_000);
  const app = await seedApp(api, git, { project: unique("naps"), repo: unique("repo") }, NODE_APP);
  const host = `web-dev-${app.project}.localhost:${platform.routerPort}`;
  await signIn({ email: platform.adminEmail, password: platform.adminPassword });

  await test.step("set the environment's default on its page: saved, shown after a reload, audited", async () => {
    await page.goto(`/environments/${app.environmentId}`);
    const panel = page.getByRole("form", { name: "Sleep when idle" });
    const field = panel.getByLabel("Sleep after (minutes)");
    await expect(field).toHaveValue("");
    await field.fill("0");
    await panel.getByRole("button", { name: "Save default" }).click();
    // The API's rule, in the form: a default of 0 minutes would put every application to sleep at once.
    await expect(panel.getByText("At least 1")).toBeVisible();
    await field.fill("30");
    await panel.getByRole("button", { name: "Save default" }).click();
    await expect(page.getByText("Applications and containers sleep after 30 min without a request by default")).toBeVisible();
    await page.reload();
    await expect(page.getByRole("form", { name: "Sleep when idle" }).getByLabel("Sleep after (minutes)")).toHaveValue("30");

    await page.goto("/audit");
    const entry = page
      .getByRole("table", { name: "audit events" })
      .getByRole("row")
      .filter({ hasText: "environment.update" })
      .filter({ has: page.locator(`a[href="/environments/${app.environmentId}"]`) });
    await expect(entry).toHaveCount(1);
  });

  await test.step("set the service to sleep after 1 minute in its Settings, and deploy", async () => {
    const service = await ServicePage.goto(page, app.serviceId, "Settings");
    await page.getByLabel("Sleep after (minutes)").fill("1");
    await page.getByRole("button", { name: "Save settings" }).click();
    await expect(page.getByText(/^Settings saved/)).toBeVisible();
    const deployment = await api.waitForDeployment((await api.deploy(app.environmentId)).deployment.id);
    expect(deployment.status).toBe("DEPLOYED");
    await service.open("Overview");
  });

  const awake = await test.step("it serves while awake", async () => {
    const answer = await getThroughRouter(platform.routerPort, host);
    expect(answer.status).toBe(200);
    return JSON.parse(answer.body) as Answer;
  });

  const service = new ServicePage(page);
  await test.step("after a minute without a request, the page shows it Sleeping", async () => {
    await expect(service.status()).toHaveAttribute("data-status", "sleeping", { timeout: 40_000 });
    await expect(service.status()).toHaveText("Sleeping");
    await capture("sleeping");
  });

  await test.step("a request to its URL wakes it: the page shows it running, and the request gets the app's answer", async () => {
    const woken = await getThroughRouter(platform.routerPort, host);
    expect(woken.status).toBe(200);
    const answer = JSON.parse(woken.body) as Answer;
    // The same release, from a new process: it was stopped, not just idle.
    expect(answer).toMatchObject({ version: "1", release: awake.release });
    expect(answer.instance).not.toBe(awake.instance);
    await expect(service.status()).toHaveAttribute("data-status", "running");
    await capture("woken");
  });
});
