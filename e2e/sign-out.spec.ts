import fs from "node:fs/promises";
import type { Browser, BrowserContext, Page } from "@playwright/test";
import { KEEPALIVE_INTERVAL_MS } from "../components/session-keepalive";
import { homeLayout } from "../server/home";
import { cookieJar, expiringSoon, SESSION_COOKIE, sessionClaims } from "../test/support/browser-session";
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

/** The runtime log's live indicator: "Live" while lines arrive as they are written, "Signed out" once its session ended. */
const liveIndicator = (page: Page) => page.getByRole("status").filter({ hasText: /Live|Reconnecting|Connecting|Signed out/ });
/** The log viewer's notice that its session ended, with the reason and a way back. */
const sessionEnded = (page: Page) => page.getByRole("alert").filter({ hasText: "Session ended" });
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
  // Three browsers and a deployment, on a machine that may be busy with other runs.
  test.slow();
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
      // The log says why its lines stopped, and does not spin on "Reconnecting".
      await expect(liveIndicator(logsTab)).toHaveText("Signed out");
      await expect(sessionEnded(logsTab)).toContainText("Live lines stopped: signed out in this browser.");
      await expect(sessionEnded(logsTab).getByRole("link", { name: "Sign in again" })).toHaveAttribute(
        "href",
        `/signin?next=${encodeURIComponent(ServicePage.url(app.serviceId, "Logs"))}`,
      );
      await captureTab(logsTab, "logs-after-sign-out");
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

/** Socket.io's frames on `/ui` (engine.io message "4", then socket.io's packet type): an event, and the server's disconnection. */
const isShellExitFrame = (frame: string | Buffer) => typeof frame === "string" && frame.startsWith('42/ui,["shell:exit"');
const isDisconnectFrame = (frame: string | Buffer) => typeof frame === "string" && frame.startsWith("41/ui,");

/**
 * An open shell whose output is still arriving when the session ends says why, whichever of its
 * exit and the disconnection reaches the tab first: here the exit is held back until the
 * disconnection has passed (as when it waits for output before it), and the reason still wins
 * over "connection lost". Then signing in again from the logs tab brings its live lines back.
 */
test("a shell printing output as its session ends says why, in whatever order the end arrives; signing in again brings the log back", async ({
  page,
  api,
  git,
  unique,
  seedUser,
  allowConsoleError,
}) => {
  test.slow();
  allowConsoleError(/status of 401/, "tabs of a browser that signed out ask the API once more, which refuses them before they go to the sign-in page");
  const app = await seedApp(api, git, { project: unique("signout-order"), repo: unique("repo") }, NODE_APP);
  const { deployment } = await api.deploy(app.environmentId);
  expect((await api.waitForDeployment(deployment.id)).status).toBe("DEPLOYED");
  const user = await seedUser("DEVELOPER");
  await signInThroughApi(page, user);
  const browser = page.context();

  const shellTab = await browser.newPage();
  let exitsHeld = 0;
  await shellTab.routeWebSocket(/\/socket\.io\//, (socket) => {
    const server = socket.connectToServer();
    const held: (string | Buffer)[] = [];
    let disconnected = false;
    server.onMessage((frame) => {
      if (!disconnected && isShellExitFrame(frame)) {
        exitsHeld += 1;
        held.push(frame);
        return;
      }
      socket.send(frame);
      if (!isDisconnectFrame(frame)) return;
      disconnected = true;
      for (const exit of held.splice(0)) socket.send(exit);
    });
  });
  const logsTab = await browser.newPage();
  await logsTab.goto(ServicePage.url(app.serviceId, "Logs"));
  await expect(liveIndicator(logsTab)).toHaveText("Live");

  await openShell(shellTab, app.serviceId);
  await shellTab.keyboard.type("i=0; while :; do i=$((i+1)); echo tick-$i; sleep 0.1; done\n");
  await expect(terminal(shellTab).locator(".xterm-rows")).toContainText(/tick-\d{2}/);

  // As the account menu does (next-auth's signOut), from the browser's own cookie jar: its tabs are busy following output.
  const { csrfToken } = (await (await page.request.get("/api/auth/csrf")).json()) as { csrfToken: string };
  expect((await page.request.post("/api/auth/signout", { form: { csrfToken }, maxRedirects: 0 })).status()).toBe(302);

  await expect(terminal(shellTab)).toHaveAttribute("data-session-status", "ended");
  await expect(terminal(shellTab).locator(".xterm-rows")).toContainText("session ended: signed out in this browser");
  await expect(terminal(shellTab).locator(".xterm-rows")).not.toContainText("connection lost");
  expect(exitsHeld).toBe(1);
  await captureTab(shellTab, "shell-exit-after-disconnect");

  await expect(liveIndicator(logsTab)).toHaveText("Signed out");
  await sessionEnded(logsTab).getByRole("link", { name: "Sign in again" }).click();
  await expect(logsTab).toHaveURL(/\/signin\?next=/);
  await logsTab.getByLabel("Email").fill(user.email);
  await logsTab.getByRole("textbox", { name: "Password" }).fill(user.password);
  await logsTab.getByRole("button", { name: "Sign in" }).click();
  await expect(logsTab).toHaveURL(new RegExp(`${ServicePage.url(app.serviceId, "Logs")}$`));
  await expect(liveIndicator(logsTab)).toHaveText("Live");
  await expect(sessionEnded(logsTab)).toHaveCount(0);
});

/**
 * A tab that only follows a live log makes no API call by itself, yet its session lasts 7 days
 * from its last use only through API calls (the API renews a cookie once it is a day old). An
 * open, visible tab asks whoami once an hour, which renews it: here the page's clock is moved on
 * an hour, with a cookie made a day old after the page loaded (its load renewed nothing).
 */
test("an open, visible tab renews its session once an hour, without being touched", async ({ page, api, git, unique, seedUser, platform }) => {
  const app = await seedApp(api, git, { project: unique("keepalive"), repo: unique("repo") }, NODE_APP);
  const user = await seedUser("VIEWER");
  await signInThroughApi(page, user);
  await page.clock.install();
  await page.goto(ServicePage.url(app.serviceId, "Logs"));
  await expect(liveIndicator(page)).toHaveText("Live");

  const secret = (await fs.readFile(homeLayout(platform.home).authSecretFile, "utf8")).trim();
  const [session] = (await page.context().cookies()).filter((cookie) => cookie.name === SESSION_COOKIE);
  expect(session).toBeDefined();
  const jar = cookieJar();
  jar.set(SESSION_COOKIE, session!.value);
  const DAY_SECONDS = 24 * 3600;
  const dayOld = (await expiringSoon(jar, secret, 7 * DAY_SECONDS - DAY_SECONDS - 60)).slice(SESSION_COOKIE.length + 1);
  const agedExpiry = (await sessionClaims(dayOld, secret)).exp;
  await page.context().addCookies([{ ...session!, value: dayOld, expires: agedExpiry }]);

  const renewal = page.waitForResponse((response) => response.url().includes("organization.whoami"));
  await page.clock.fastForward(KEEPALIVE_INTERVAL_MS);
  const answer = await renewal;
  expect(answer.status()).toBe(200);
  expect((await answer.headerValue("set-cookie")) ?? "").toContain(`${SESSION_COOKIE}=`);
  const [renewed] = (await page.context().cookies()).filter((cookie) => cookie.name === SESSION_COOKIE);
  expect((await sessionClaims(renewed!.value, secret)).exp).toBeGreaterThanOrEqual(agedExpiry + DAY_SECONDS);
});
