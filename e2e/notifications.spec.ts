import { createHmac, timingSafeEqual } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { simpleParser, type ParsedMail } from "mailparser";
import { SMTPServer } from "smtp-server";
import { DeploymentPage } from "./pages/deployment-page";
import { expect, NODE_APP, test } from "./fixtures/test";
import { seedApp } from "./fixtures/seed";

/** The receiver's own check of the documented signature: `t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, within 5 minutes. */
function verified(header: string | undefined, body: string, secret: string): boolean {
  const parts = Object.fromEntries((header ?? "").split(",").map((part) => part.split("=", 2) as [string, string]));
  if (!parts.t || !parts.v1 || Math.abs(Date.now() / 1000 - Number(parts.t)) > 300) return false;
  const expected = createHmac("sha256", secret).update(`${parts.t}.${body}`).digest();
  const given = Buffer.from(parts.v1, "hex");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

test("a notification rule fires: a signed webhook receives the deployment, and the page shows the delivery", async ({
  page,
  api,
  git,
  unique,
  platform,
  signIn,
  capture,
}) => {
  const received: { event: string; body: string; signature: string | undefined }[] = [];
  const receiver = http.createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
    req.on("end", () => {
      received.push({ event: String(req.headers["slipway-event"]), body, signature: req.headers["slipway-signature"] as string | undefined });
      res.writeHead(200).end("received by the journey");
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  try {
    const app = await seedApp(api, git, { project: unique("notify"), repo: unique("repo") }, NODE_APP);
    await signIn({ email: platform.adminEmail, password: platform.adminPassword });
    await page.goto(`/projects/${app.projectId}`);
    await page.getByRole("link", { name: "Notifications" }).click();

    const form = page.getByRole("form", { name: "Add a notification rule" });
    await form.getByLabel("Name").fill("ci hook");
    await form.getByLabel("Webhook URL").fill(`http://127.0.0.1:${(receiver.address() as AddressInfo).port}/slipway`);
    await form.getByRole("checkbox", { name: "deployment.failed" }).uncheck();
    await form.getByRole("checkbox", { name: "deployment.started" }).check();
    await form.getByRole("checkbox", { name: "deployment.succeeded" }).check();
    await form.getByRole("button", { name: "Add rule" }).click();
    const secret = ((await page.getByLabel("Signing secret", { exact: true }).textContent()) ?? "").trim();
    expect(secret).toMatch(/^[0-9a-f]{64}$/);
    const rule = page.getByRole("article", { name: "Rule ci hook" });
    await expect(rule).toContainText(`http://127.0.0.1:${(receiver.address() as AddressInfo).port}/…`);
    await expect(rule).not.toContainText("/slipway");

    await page.goto(`/environments/${app.environmentId}`);
    await page.getByRole("button", { name: "Deploy", exact: true }).click();
    // The dashboard opens the deployment once the history has the new one: slow on a busy machine.
    await page.waitForURL(/\/deployments\/[0-9a-f-]{36}$/, { timeout: 60_000 });
    const { deployment } = await DeploymentPage.opened(page);
    await expect(deployment.status()).toHaveAttribute("data-status", "DEPLOYED", { timeout: 90_000 });

    await page.goto(`/projects/${app.projectId}/notifications`);
    const log = page.getByRole("table", { name: "Deliveries of ci hook" });
    const succeeded = log.getByRole("row").filter({ hasText: "deployment.succeeded" });
    await expect(succeeded).toContainText("delivered");
    await expect(succeeded).toContainText("#1: HTTP 200");
    await expect(succeeded).toContainText("received by the journey");
    await expect(log.getByRole("row").filter({ hasText: "deployment.started" })).toContainText("delivered");
    await capture("notification-delivered");

    expect(received.map((r) => r.event).sort()).toEqual(["deployment.started", "deployment.succeeded"]);
    for (const request of received) expect(verified(request.signature, request.body, secret)).toBe(true);
  } finally {
    receiver.closeAllConnections();
    await new Promise((resolve) => receiver.close(resolve));
  }
});

test("an email rule is added from the form with its SMTP settings, and its test message reaches the SMTP server", async ({
  page,
  api,
  git,
  unique,
  platform,
  signIn,
  capture,
}) => {
  const mails: ParsedMail[] = [];
  const smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS"],
    logger: false,
    onAuth: (auth, _session, callback) =>
      auth.username === "mailer" && auth.password === "smtp-e2e-password" ? callback(null, { user: "mailer" }) : callback(new Error("bad credentials")),
    onData: (stream, _session, callback) => {
      simpleParser(stream)
        .then((mail) => {
          mails.push(mail);
          callback();
        })
        .catch(callback);
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, "127.0.0.1", resolve));
  try {
    const app = await seedApp(api, git, { project: unique("mail"), repo: unique("repo") }, NODE_APP);
    await signIn({ email: platform.adminEmail, password: platform.adminPassword });
    await page.goto(`/projects/${app.projectId}/notifications`);

    const form = page.getByRole("form", { name: "Add a notification rule" });
    await form.getByLabel("Name").fill("ops mail");
    await form.getByRole("combobox", { name: "Channel" }).selectOption({ label: "Email (SMTP)" });
    await expect(form.getByLabel("Webhook URL")).toHaveCount(0);
    // The API's own rules, before anything is sent: an address that is not one.
    await form.getByLabel("SMTP host").fill("127.0.0.1");
    await form.getByLabel("SMTP port").fill(String((smtp.server.address() as AddressInfo).port));
    await form.getByLabel("SMTP user").fill("mailer");
    const password = form.getByLabel("SMTP password");
    await password.fill("smtp-e2e-password");
    await expect(password).toHaveAttribute("type", "password");
    await form.getByLabel(/^From\b/).fill("slipway@example.test");
    await form.getByLabel(/^To\b/).fill("ops@example.test, not-an-address");
    await form.getByRole("button", { name: "Add rule" }).click();
    await expect(form.getByText(/Invalid email/i)).toBeVisible();
    await form.getByLabel(/^To\b/).fill("ops@example.test, dev@example.test");
    await form.getByRole("button", { name: "Add rule" }).click();

    const rule = page.getByRole("article", { name: "Rule ops mail" });
    await expect(rule).toContainText("ops@example.test, dev@example.test via 127.0.0.1:");
    await expect(rule).not.toContainText("smtp-e2e-password");
    await rule.getByRole("button", { name: "Send a test" }).click();
    const log = page.getByRole("table", { name: "Deliveries of ops mail" });
    await expect(log.getByRole("row").filter({ hasText: "notification.test" })).toContainText("delivered");
    await capture("notification-email");
    await expect.poll(() => mails.length).toBe(1);
    expect(mails[0]!.subject).toMatch(/^\[Slipway\] A test of the notification rule ops mail/);
    expect((Array.isArray(mails[0]!.to) ? mails[0]!.to : [mails[0]!.to]).map((to) => to?.text).join(", ")).toBe("ops@example.test, dev@example.test");
  } finally {
    await new Promise((resolve) => smtp.close(() => resolve(undefined)));
  }
});
