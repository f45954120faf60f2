import type { Browser, BrowserContext, Page } from "@playwright/test";
import { expect, NODE_APP, signInThroughApi, test } from "./fixtures/test";
import { seedApp } from "./fixtures/seed";
import { AccountMenu } from "./pages/account-menu";
import { ServicePage } from "./pages/service-page";

/** A device of its own (cookies, storage), signed in as `user`, with the journey's settings. */
async function signedInDevice(browser: Browser, baseURL: string, user: { email: string; password: string }): Promise<BrowserContext> {
  const context = await browser.newContext({ baseURL, reducedMotion: "reduce" });
  await signInThroughApi(await context.newPage(), user);
  return context;
}

/** The runtime log's live indicator: "Live" while lines arrive as they are written. */
const liveIndicator = (page: Page) => page.getByRole("status").filter({ hasText: /Live|Reconnecting|Connecting/ });
const terminal = (page: Page) => page.getByRole("region", { name: "Terminal" });

/** A full-page screenshot of one tab (the `capture` fixture takes the test's own page), attached to the test. */
async function captureTab(tab: Page, name: string): Promise<void> {
  const file = test.info().outputPath(`${name}.png`);
  await tab.screenshot({ path: file, fullPage: true });
  await test.info().attach(name, { path: file, contentType: "image/png" });
}

/** Opens a shell in the service and checks that it answers. */
async function openShell(page: Page, serviceId: string): Promise<void> {
  await ServicePage.goto(page, serviceId, "Shell");
  await expect(terminal(page)).toHaveAttribute("data-session-status", "open");
  await terminal(page).click();
  await page.keyboard.type('echo "shell-$((20+22))"\n');
  await expect(terminal(page).locator(".xterm-rows")).toContainText("shell-42");
}

/**
 * Signing out, in real browsers: it ends the session on the server (a copy of its cookie is
 * refused) and its live connections in every tab, while other devices stay signed in; signing
 * out everywhere ends every device's session, and an open shell says why it ended.
 */
test("sign-out ends the session in every tab and for a copied cookie; sign out everywhere ends every device's", async ({
  page,
  browser,
  api,
  git,
  unique,
  platform,
  seedUser,
  allowConsoleError,
}) => {
  allowConsoleError(/status of 401/, "tabs of a browser that signed out ask the API once more, which refuses them before they go to the sign-in page");
  const app = await seedApp(api, git, { project: unique("signout"), repo: unique("repo") }, NODE_APP);
  const { deployment } = await api.deploy(app.environmentId);
  expect((await api.waitForDeployment(deployment.id)).status).toBe("DEPLOYED");
  const user = await seedUser("DEVELOPER");

  // Device A: three tabs of one browser (the overview, the runtime log, a shell). Devices B and C: other browsers.
  const deviceA = page.context();
  await signInThroughApi(page, user);
  const deviceB = await signedInDevice(browser, platform.url, user);
  const deviceC = await signedInDevice(browser, platform.url, user);
  try {
    const logsTab = await deviceA.newPage();
    const shellTab = await deviceA.newPage();
    const [onB] = deviceB.pages();
    const [onC] = deviceC.pages();

    await test.step("device A signs out in one tab: its other tabs lose their live connections, a copy of its cookie is refused", async () => {
      await page.goto("/");
      await expect(page.getByRole("heading", { level: 1, name: "Overview" })).toBeVisible();
      await logsTab.goto(ServicePage.url(app.serviceId, "Logs"));
      await expect(liveIndicator(logsTab)).toHaveText("Live");
      await openShell(shellTab, app.serviceId);
      await onB!.goto(ServicePage.url(app.serviceId, "Logs"));
      await expect(liveIndicator(onB!)).toHaveText("Live");
      const copiedCookies = await deviceA.cookies();
      expect(copiedCookies.some((cookie) => cookie.name === "authjs.session-token")).toBe(true);

      await new AccountMenu(page, user.email).signOut();
      await expect(page).toHaveURL(/\/signin/);
      await expect(page.getByRole("button", { name: "Sign in" })).toBeVisible();

      await expect(terminal(shellTab).locator(".xterm-rows")).toContainText("session ended: signed out in this browser");
      await expect(terminal(shellTab)).toHaveAttribute("data-session-status", "ended");
      await captureTab(shellTab, "shell-after-sign-out");
      await expect(liveIndicator(logsTab)).not.toHaveText("Live");
      // Moving on within the dashboard (no page load) reaches the sign-in page too.
      await logsTab.getByRole("link", { name: "Audit log" }).click();
      await expect(logsTab).toHaveURL(/\/signin/);

      const thief = await browser.newContext({ baseURL: platform.url, reducedMotion: "reduce" });
      try {
        await thief.addCookies(copiedCookies);
        const stolen = await thief.newPage();
        await stolen.goto("/");
        await expect(stolen).toHaveURL(/\/signin/);
        expect((await thief.request.get("/api/trpc/organization.whoami?input=%7B%7D")).status()).toBe(401);
      } finally {
        await thief.close();
      }

      // Another device of the same account keeps its session and its live connection.
      await expect(liveIndicator(onB!)).toHaveText("Live");
      await onB!.reload();
      await expect(liveIndicator(onB!)).toHaveText("Live");
    });

    await test.step("device B signs out everywhere: it and device C are signed out, C's shell says why", async () => {
      await openShell(onC!, app.serviceId);
      const onC2 = await deviceC.newPage();
      await onC2.goto("/");
      await expect(onC2.getByRole("heading", { level: 1, name: "Overview" })).toBeVisible();

      const dialog = await new AccountMenu(onB!, user.email).openSignOutEverywhere();
      await captureTab(onB!, "sign-out-everywhere-dialog");
      await dialog.getByRole("button", { name: "Sign out everywhere" }).click();
      await expect(onB!).toHaveURL(/\/signin/);
      await expect(onB!.getByRole("button", { name: "Sign in" })).toBeVisible();

      await expect(terminal(onC!).locator(".xterm-rows")).toContainText("session ended: signed out: the account signed out everywhere");
      await expect(terminal(onC!)).toHaveAttribute("data-session-status", "ended");
      await captureTab(onC!, "shell-after-sign-out-everywhere");
      await onC2.getByRole("link", { name: "Audit log" }).click();
      await expect(onC2).toHaveURL(/\/signin/);
      await onC!.goto("/");
      await expect(onC!).toHaveURL(/\/signin/);
    });

    const audit = await api.audit();
    expect(audit.filter((event) => event.action === "user.sign_out_everywhere").length).toBeGreaterThan(0);
  } finally {
    await deviceB.close();
    await deviceC.close();
  }
});
