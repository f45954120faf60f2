import path from "node:path";
import { fileURLToPath } from "node:url";
import { DeploymentPage } from "./pages/deployment-page";
import { expect, test } from "./fixtures/test";
import { endDatabaseConnections } from "./fixtures/platform";
import { seedApp } from "./fixtures/seed";

const CHATTY = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "fixtures/apps/chatty");
const TOTAL = 900;

test("the runtime log survives a dropped socket with no line lost or repeated", async ({
  page,
  context,
  api,
  git,
  unique,
  platform,
  signIn,
  capture,
  allowConsoleError,
}) => {
  allowConsoleError(
    /ERR_INTERNET_DISCONNECTED|WebSocket connection to .* failed/,
    "the test takes the browser offline on purpose: its reconnection attempts fail until it is back",
  );
  // Keep a handle on every WebSocket the page opens, so the test can cut them like a network drop would.
  await page.addInitScript(() => {
    const sockets: WebSocket[] = [];
    (window as unknown as { __sockets: WebSocket[] }).__sockets = sockets;
    const Native = window.WebSocket;
    window.WebSocket = class extends Native {
      constructor(url: string | URL, protocols?: string | string[]) {
        super(url, protocols);
        sockets.push(this);
      }
    };
  });

  const app = await seedApp(api, git, { project: unique("chat"), repo: unique("repo") }, CHATTY);
  await api.setVariable({ scope: "SERVICE", targetId: app.serviceId, key: "API_TOKEN", value: "sk-e2e-secret-4242", secret: true });
  // 900 lines over about 45 s: still coming when the connection drops, even on a busy machine.
  await api.setVariable({ scope: "SERVICE", targetId: app.serviceId, key: "CHATTY_INTERVAL_MS", value: "50" });
  const { deployment } = await api.deploy(app.environmentId);
  expect((await api.waitForDeployment(deployment.id)).status).toBe("DEPLOYED");

  await signIn({ email: platform.adminEmail, password: platform.adminPassword });
  await page.goto(`/services/${app.serviceId}/logs`);
  const log = page.getByRole("log", { name: "Runtime logs" });
  const live = page.getByRole("status").filter({ hasText: /Live|Reconnecting|Connecting/ });
  await expect(live).toHaveText("Live");
  // Secrets are masked in runtime output too.
  await expect(log).toContainText("with token ****");
  await expect(log).not.toContainText("sk-e2e-secret-4242");
  // ANSI colours render as styles; HTML in a line is text, not markup.
  await expect(log.getByText("<b>not bold</b>").first()).toBeAttached();
  await expect(log.locator("b")).toHaveCount(0);

  await test.step("drop the connection while lines keep coming", async () => {
    await expect(log.locator("[data-seq]")).not.toHaveCount(0);
    // Cut the socket first (an offline page cannot finish a close handshake, so the client
    // would only notice at its next ping timeout), then keep it from reconnecting.
    await page.evaluate(() => (window as unknown as { __sockets: WebSocket[] }).__sockets.forEach((socket) => socket.close()));
    await context.setOffline(true);
    await expect(live).toHaveText("Reconnecting");
    const shown = await DeploymentPage.seqs(log);
    const lastShown = shown.at(-1)!;
    // Lines are written and stored meanwhile: the view must fetch them when it is back.
    await expect.poll(async () => (await api.logs({ serviceId: app.serviceId, after: lastShown, limit: 5000 })).length).toBeGreaterThan(50);
    await capture("logs-offline");
    await context.setOffline(false);
    await expect(live).toHaveText("Live");
  });

  await test.step("every stored line is shown once, in order", async () => {
    await expect(log).toContainText("chatty done", { timeout: 60_000 });
    await expect(async () => {
      const stored = (await api.allLogs({ serviceId: app.serviceId })).map((line) => line.seq);
      const shown = await DeploymentPage.seqs(log);
      expect(shown.length).toBeGreaterThan(TOTAL);
      for (let i = 1; i < shown.length; i++) expect(shown[i]!).toBeGreaterThan(shown[i - 1]!);
      expect(shown).toEqual(stored.filter((seq) => seq >= shown[0]!));
    }).toPass({ timeout: 15_000 });
    await expect(log.getByText(`tick ${TOTAL}/${TOTAL}`)).toBeAttached();
    await capture("logs-after-reconnect");
  });

  await test.step("a gap in the server's own notifications (its database connection dropped): the page re-reads, still live", async () => {
    const rereads: string[] = [];
    page.on("request", (request) => {
      if (/\/api\/trpc\/[^?]*logs/.test(request.url())) rereads.push(request.url());
    });
    // Nothing re-reads on its own while the stream is live and quiet.
    await page.waitForTimeout(1_500);
    expect(rereads).toEqual([]);
    // The web process's listener of Slipway's channels; its socket to this page stays up.
    expect(await endDatabaseConnections(platform, 'listen "%')).toBeGreaterThan(0);
    await expect.poll(() => rereads.length, { timeout: 10_000 }).toBeGreaterThan(0);
    await expect(live).toHaveText("Live");
  });

  await test.step("search filters the loaded lines and download has them as plain text", async () => {
    await page.getByLabel("Search logs").fill("tick 45/");
    await expect(log.locator("[data-seq]")).toHaveCount(1);
    await expect(log.locator("mark")).toHaveText("tick 45/");
    await page.getByLabel("Search logs").fill("");
    const downloading = page.waitForEvent("download");
    await page.getByRole("button", { name: "Download" }).click();
    const file = await downloading;
    expect(file.suggestedFilename()).toBe("web-runtime.log");
    const text = await (await file.createReadStream()).toArray().then((chunks) => Buffer.concat(chunks).toString("utf8"));
    expect(text).toContain(`tick ${TOTAL}/${TOTAL} <b>not bold</b>\n`);
    expect(text).not.toContain("\u001b[");
  });

  await test.step("filters in the URL read the filtered history, and the level filter keeps a level and worse", async () => {
    await page.goto(`/services/${app.serviceId}/logs?level=warn`);
    await expect(page.getByRole("combobox", { name: "Level" })).toHaveValue("warn");
    await expect(log.locator("[data-seq]")).toHaveCount(2);
    await expect(log).toContainText("chatty warns on purpose");
    await expect(log).toContainText("chatty failed on purpose");

    await page.getByRole("combobox", { name: "Level" }).selectOption({ label: "Errors and worse" });
    await page.getByRole("combobox", { name: "Stream" }).selectOption({ label: "stdout" });
    await expect(page).toHaveURL(/\/logs\?stream=stdout&level=error$/);
    await expect(log.locator("[data-seq]")).toHaveCount(1);
    await expect(log).toContainText("chatty failed on purpose");
    await page.getByRole("combobox", { name: "Level" }).selectOption({ label: "Any level" });
    await expect(page).toHaveURL(/\/logs\?stream=stdout$/);
    await expect(log).toContainText("chatty done");
    await capture("logs-filtered");
  });

  await test.step("the stream filter keeps what the app wrote to stderr, and the release filter offers the release that logged", async () => {
    await page.getByRole("combobox", { name: "Stream" }).selectOption({ label: "stderr" });
    await expect(page).toHaveURL(/\/logs\?stream=stderr$/);
    await expect(log.locator("[data-seq]")).toHaveCount(1);
    await expect(log).toContainText("chatty complains on stderr");
    const release = page.getByRole("combobox", { name: "Release" });
    const current = release.locator("option", { hasText: "(current)" });
    await expect(current).toHaveCount(1);
    await release.selectOption({ label: (await current.textContent())! });
    await expect(page).toHaveURL(/\/logs\?stream=stderr&release=[A-Za-z0-9_-]+$/);
    await expect(log).toContainText("chatty complains on stderr");
  });
});
