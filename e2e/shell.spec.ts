import { expect, NODE_APP, test } from "./fixtures/test";
import { seedApp } from "./fixtures/seed";
import { ServicePage } from "./pages/service-page";

/**
 * The remote shell, in the browser: from the service page's Shell tab to a terminal (xterm.js)
 * in the running release, a typed command and its output, the variables the app sees, and the
 * session in the audit log without its contents.
 */
test("open a shell in a running service, run a command and read its output", async ({ page, api, git, unique, platform, signIn, capture }) => {
  const app = await seedApp(api, git, { project: unique("shell"), repo: unique("repo") }, NODE_APP);
  await api.setVariable({ scope: "SERVICE", targetId: app.serviceId, key: "GREETING", value: "hello-from-a-variable" });
  const { deployment } = await api.deploy(app.environmentId);
  expect((await api.waitForDeployment(deployment.id)).status).toBe("DEPLOYED");

  await signIn({ email: platform.adminEmail, password: platform.adminPassword });
  const service = await ServicePage.goto(page, app.serviceId);
  await service.open("Shell");
  await expect(page.getByRole("heading", { level: 1, name: "web" })).toBeVisible();
  const terminal = page.getByRole("region", { name: "Terminal" });
  await expect(terminal).toHaveAttribute("data-session-status", "open");

  await terminal.click();
  await page.keyboard.type('echo "answer-$((6*7)) $GREETING"; pwd\n');
  await expect(terminal.locator(".xterm-rows")).toContainText("answer-42 hello-from-a-variable");
  await expect(terminal.locator(".xterm-rows")).toContainText(`/services/${app.serviceId}/releases/`);
  await capture("shell");

  await page.keyboard.type("exit 3\n");
  await expect(terminal.locator(".xterm-rows")).toContainText("process exited with code 3");
  await expect(page.getByRole("button", { name: "New session" })).toBeVisible();

  const audit = await api.audit();
  expect(audit.filter((event) => event.action === "shell.open").length).toBeGreaterThan(0);
  await expect.poll(async () => (await api.audit()).filter((event) => event.action === "shell.close").length).toBeGreaterThan(0);
  expect(JSON.stringify(await api.audit())).not.toContain("answer-");
});
