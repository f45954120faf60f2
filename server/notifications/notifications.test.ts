/**
 * Notifications (issue 16, part 4) on a real PostgreSQL with the real graphile-worker: rules
 * through createCaller, deployment status changes as the engine reports them, and receivers on
 * 127.0.0.1 (an HTTP server that checks the signature with its own implementation of the
 * documented algorithm, and an SMTP server of the smtp-server library).
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { and, eq, isNull } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import type { Runner } from "graphile-worker";
import { simpleParser, type ParsedMail } from "mailparser";
import pino from "pino";
import { SMTPServer } from "smtp-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeploymentEvent } from "../../engine/protocol/events";
import { createTestDatabase, type TestDatabase } from "../../test/database";
import { eventually } from "../../test/engine-harness";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { startWorker } from "../../worker/runner";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { appendEngineEvents } from "../deployments/events";
import { getDeployment } from "../deployments/queries";
import * as schema from "../db/schema";
import { auditEvents, environments, gitPreviews, notificationRules } from "../db/schema";
import { reapExpiredEnvironments } from "../environments/lifecycle";
import { createWebhookIntake } from "../webhooks/intake";
import { deliver } from "../../test/support/webhooks";
import { sendToChannel } from "./channels";
import { deploymentTransitions } from "./deployment-events";
import { notify } from "./enqueue";
import { createHeartbeatStamps } from "../engines/heartbeat-stamps";
import { engineDisconnected, notifyEngineDisconnected } from "./engine-events";
import type { NotificationEvent } from "./events";

const logger = pino({ level: "silent" });
/** How long an engine may be away before it is reported, shortened for the test (an instance's is at least 5 s). */
const ENGINE_GRACE_MS = 3_000;
let services: Services;
let pool: TestDatabase["pool"];
let org: SeededOrganization;
let worker: Runner;
let receiver: http.Server;
let receiverUrl: string;
let smtp: SMTPServer;
let smtpPort: number;
let projectId: string;
let stagingId: string;
let otherEnvironmentId: string;
let intake: ReturnType<typeof createWebhookIntake>;
let intakeServer: http.Server;
let intakeUrl: string;

/** Every request the HTTP receiver got, by path. */
const received: { path: string; headers: http.IncomingHttpHeaders; body: string; verified: boolean }[] = [];
const mails: ParsedMail[] = [];
/** The signing secret of each webhook rule, by the receiver path it posts to. */
const secrets = new Map<string, string>();
let flakyFailuresLeft = 2;

/** The receiver's check, written from the README's description rather than with Slipway's code. */
function verifySignature(header: string | undefined, body: string, secret: string, toleranceSeconds = 300): boolean {
  const parts = Object.fromEntries((header ?? "").split(",").map((part) => part.split("=", 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(Date.now() / 1000 - t) > toleranceSeconds || !parts.v1) return false;
  const expected = createHmac("sha256", secret).update(`${t}.${body}`).digest();
  const given = Buffer.from(parts.v1, "hex");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

const admin = () => createCaller({ services, actor: org.as("ADMIN") });
const developer = () => createCaller({ services, actor: org.as("DEVELOPER") });
const viewer = () => createCaller({ services, actor: org.as("VIEWER") });

beforeAll(async () => {
  const database = await createTestDatabase();
  pool = database.pool;
  // The receivers listen on 127.0.0.1, which an instance refuses by default (target-address.ts).
  services = testServices(database.db, { notifications: { allowPrivateTargets: true, engineDisconnectGraceMs: ENGINE_GRACE_MS } });
  org = await seedOrganization(services, "notify");
  receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const path = req.url ?? "/";
      const secret = secrets.get(path);
      const verified = secret ? verifySignature(req.headers["slipway-signature"] as string | undefined, body, secret) : false;
      received.push({ path, headers: req.headers, body, verified });
      if (path === "/flaky" && flakyFailuresLeft > 0) {
        flakyFailuresLeft--;
        return res.writeHead(503).end("not yet");
      }
      if (secret && !verified) return res.writeHead(401).end("bad signature");
      res.writeHead(200).end("thanks");
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS"],
    logger: false,
    onAuth: (auth, _session, callback) =>
      auth.username === "mailer" && auth.password === "smtp-password" ? callback(null, { user: "mailer" }) : callback(new Error("bad credentials")),
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
  smtpPort = (smtp.server.address() as AddressInfo).port;
  worker = await startWorker({ services, connectionString: database.url, logger });
  intake = createWebhookIntake(services, { logger, cacheMs: 0, rejectFlushMs: 20 });
  intakeServer = http.createServer((req, res) => {
    void intake.handle(req, res).then((handled) => handled || res.writeHead(404).end());
  });
  await new Promise<void>((resolve) => intakeServer.listen(0, "127.0.0.1", resolve));
  intakeUrl = `http://127.0.0.1:${(intakeServer.address() as AddressInfo).port}`;

  const project = await developer().projects.create({ name: "shop" });
  projectId = project.id;
  stagingId = (await developer().environments.create({ projectId, name: "staging" })).id;
  otherEnvironmentId = (await developer().environments.create({ projectId, name: "other" })).id;
  await developer().services.create({
    environmentId: stagingId,
    name: "web",
    config: { git: { url: "https://github.com/acme/shop.git", ref: { branch: "main" } } },
  });
}, 60_000);

afterAll(async () => {
  await worker?.stop();
  await intake?.close();
  intakeServer?.closeAllConnections();
  await new Promise((resolve) => intakeServer?.close(resolve));
  receiver?.closeAllConnections();
  await new Promise((resolve) => receiver?.close(resolve));
  await new Promise((resolve) => smtp?.close(() => resolve(undefined)));
});

/** A service on 127.0.0.1 that greets like an sshd: its banner is what must not reach the attempt log. */
async function bannerServer() {
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    socket.on("error", () => {});
    socket.write("SSH-2.0-OpenSSH_9.6p1 internal-bastion\r\n");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => connections,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** What the engine reports for a whole deployment of the environment, ending as `outcome`. */
async function deployStaging(outcome: "succeeded" | "failed") {
  const { deployment } = await developer().deployments.create({ environmentId: stagingId, action: "DEPLOY" });
  const row = await getDeployment({ ...services, actor: org.as("DEVELOPER") }, deployment.id);
  let seq = Date.now() * 1000;
  const event = (fields: Omit<DeploymentEvent, "seq" | "at">): DeploymentEvent => ({ seq: seq++, at: new Date().toISOString(), ...fields });
  const started = await appendEngineEvents(services.db, services, row, [event({ serviceId: null, step: "deployment", status: "started" })]);
  await appendEngineEvents(services.db, services, started, [
    event({ serviceId: null, step: "deployment", status: outcome, message: outcome === "failed" ? "build broke" : undefined }),
  ]);
  return deployment.id;
}

async function addWebhookRule(path: string, events: NotificationEvent[], extra: { environmentId?: string; enabled?: boolean } = {}) {
  const { rule, secret } = await developer().notifications.create({
    projectId,
    name: `hook ${secrets.size + 1}`,
    events,
    channel: { type: "webhook", url: `${receiverUrl}${path}` },
    ...extra,
  });
  secrets.set(path, secret!);
  return rule;
}

const deliveredAll = (ruleId: string, count: number, timeoutMs = 15_000) =>
  eventually(
    async () => {
      const deliveries = await developer().notifications.deliveries({ ruleId });
      return deliveries.length === count && deliveries.every((d) => d.status !== "PENDING") ? deliveries : undefined;
    },
    timeoutMs,
    `${count} deliveries of rule ${ruleId} to settle`,
  );

describe("generic webhooks", () => {
  it("sends a deployment's start and success, signed, to the matching rules only; the URL and secret stay sealed; every change is audited", async () => {
    const rule = await addWebhookRule("/signed", ["deployment.started", "deployment.succeeded"]);
    const elsewhere = await addWebhookRule("/elsewhere", ["deployment.started", "deployment.succeeded"], { environmentId: otherEnvironmentId });
    const disabled = await addWebhookRule("/disabled", ["deployment.succeeded"], { enabled: false });
    const failuresOnly = await addWebhookRule("/failures", ["deployment.failed"]);

    expect(rule.target).toBe(`${receiverUrl}/…`);
    const listed = JSON.stringify(await viewer().notifications.list({ projectId }));
    expect(listed).not.toContain("/signed");
    expect(listed).not.toContain(secrets.get("/signed"));
    const [row] = await services.db.select().from(notificationRules).where(eq(notificationRules.id, rule.id));
    expect(row!.encryptedConfig).not.toContain("/signed");
    expect(row!.encryptedConfig).not.toContain(secrets.get("/signed"));

    const deploymentId = await deployStaging("succeeded");
    const deliveries = await deliveredAll(rule.id, 2);
    expect(deliveries.map((d) => d.event).sort()).toEqual(["deployment.started", "deployment.succeeded"]);
    for (const delivery of deliveries) {
      expect(delivery.status).toBe("DELIVERED");
      expect(delivery.attempts).toMatchObject([{ attempt: 1, responseStatus: 200, responseExcerpt: "thanks", error: null }]);
    }
    const requests = received.filter((r) => r.path === "/signed");
    expect(requests).toHaveLength(2);
    expect(requests.every((r) => r.verified)).toBe(true);
    const succeeded = requests.find((r) => r.headers["slipway-event"] === "deployment.succeeded")!;
    const body = JSON.parse(succeeded.body);
    expect(body).toMatchObject({
      event: "deployment.succeeded",
      id: succeeded.headers["slipway-delivery"],
      project: { id: projectId, name: "shop" },
      environment: { id: stagingId, name: "staging" },
      deployment: { id: deploymentId, status: "DEPLOYED" },
    });
    // The same body signed with another secret, or the right signature replayed later, is refused.
    expect(verifySignature(succeeded.headers["slipway-signature"] as string, succeeded.body, "another-secret")).toBe(false);
    expect(verifySignature(succeeded.headers["slipway-signature"] as string, `${succeeded.body} `, secrets.get("/signed")!)).toBe(false);

    for (const silent of [elsewhere, disabled, failuresOnly]) expect(await developer().notifications.deliveries({ ruleId: silent.id })).toEqual([]);

    await developer().notifications.update({ ruleId: disabled.id, enabled: true });
    await developer().notifications.delete({ ruleId: elsewhere.id });
    const audited = await services.db
      .select({ action: auditEvents.action, changes: auditEvents.changes })
      .from(auditEvents)
      .where(and(eq(auditEvents.organizationId, org.organizationId), eq(auditEvents.targetType, "notification_rule")));
    expect(audited.map((a) => a.action)).toEqual(expect.arrayContaining(["notification_rule.create", "notification_rule.update", "notification_rule.delete"]));
    expect(JSON.stringify(audited)).not.toContain(receiverUrl);
    // The audit log links a rule's events to the project's Notifications page.
    const logged = await admin().organization.audit({ targetId: rule.id });
    expect(logged[0]!.target).toEqual({ label: rule.name, href: `/projects/${projectId}/notifications` });
  });

  it("retries a receiver that fails twice: delivered on the third attempt, and the log shows all three", async () => {
    const rule = await addWebhookRule("/flaky", ["deployment.failed"]);
    await deployStaging("failed");
    // graphile-worker's backoff: about 3 s, then 7 s.
    const [delivery] = await deliveredAll(rule.id, 1, 40_000);
    expect(delivery!.status).toBe("DELIVERED");
    expect(delivery!.attempts.map((a) => [a.attempt, a.responseStatus, a.responseExcerpt])).toEqual([
      [1, 503, "not yet"],
      [2, 503, "not yet"],
      [3, 200, "thanks"],
    ]);
    expect(delivery!.attempts[0]!.error).toBe("the receiver answered 503");
    const bodies = received.filter((r) => r.path === "/flaky").map((r) => JSON.parse(r.body));
    expect(bodies).toHaveLength(3);
    expect(new Set(bodies.map((b) => b.id)).size).toBe(1);
    expect(bodies[0]).toMatchObject({ event: "deployment.failed", deployment: { message: "build broke" } });
  }, 60_000);

  it("needs DEVELOPER to manage rules and refuses bad channels with a clear error", async () => {
    await expect(
      viewer().notifications.create({ projectId, name: "x", events: ["deployment.failed"], channel: { type: "slack", url: `${receiverUrl}/s` } }),
    ).rejects.toMatchObject({
      code: "FORBIDDEN",
    });
    await expect(
      developer().notifications.create({ projectId, name: "x", events: ["deployment.failed"], channel: { type: "slack", url: "ftp://example.test/x" } }),
    ).rejects.toMatchObject({ code: "BAD_REQUEST" });
    await expect(
      developer().notifications.create({
        projectId,
        name: "x",
        events: ["deployment.failed"],
        channel: { type: "webhook", url: `${receiverUrl}/x` },
        environmentId: projectId,
      }),
    ).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect(await admin().notifications.events({})).toContain("certificate.renewal_failed");
  });
});

describe("private addresses", () => {
  /** A caller of an instance as it is by default: webhooks to public addresses only. */
  const guarded = () =>
    createCaller({ services: { ...services, notifications: { ...services.notifications, allowPrivateTargets: false } }, actor: org.as("DEVELOPER") });

  it("refuses a webhook to a loopback, private or link-local address when a rule is saved, unless the instance allows it", async () => {
    const refused: [string, string][] = [
      [`${receiverUrl}/x`, "127.0.0.1 is a loopback address"],
      ["http://localhost:9/x", "localhost \\((127\\.0\\.0\\.1|::1)\\) is a loopback address"],
      ["http://[::1]:9/x", "::1 is a loopback address"],
      ["http://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local address"],
      ["https://10.1.2.3/hook", "10.1.2.3 is a private address"],
      ["http://[::ffff:127.0.0.1]/x", "::ffff:7f00:1 is an IPv4-mapped address"],
    ];
    for (const [url, message] of refused) {
      const creating = guarded().notifications.create({ projectId, name: "internal", events: ["deployment.failed"], channel: { type: "slack", url } });
      await expect(creating).rejects.toMatchObject({ code: "BAD_REQUEST" });
      await expect(creating).rejects.toThrow(new RegExp(`^${message}: notifications go to public addresses only, .*SLIPWAY_NOTIFICATIONS_ALLOW_PRIVATE=1`));
    }
    // A public address is taken (a literal one: the check needs no DNS here).
    const { rule } = await guarded().notifications.create({
      projectId,
      name: "public",
      events: ["deployment.failed"],
      enabled: false,
      channel: { type: "discord", url: "https://93.184.215.14/api/webhooks/1/abc" },
    });
    await developer().notifications.delete({ ruleId: rule.id });
  });

  it("checks at delivery the address the name resolves to when it connects, so a name that changes after the save is refused too", async () => {
    const payload = { id: "d-1", event: "notification.test", text: "hello" };
    const config = (host: string) => ({ type: "webhook" as const, url: `http://${host}:${new URL(receiverUrl).port}/rebound`, secret: "s" });
    // "localhost" passes no check at save here; at delivery it resolves to a loopback address, and nothing is sent.
    await expect(sendToChannel(config("localhost"), payload, new Date(), { allowPrivateTargets: false })).rejects.toThrow(
      /^DNS lookup (127\.0\.0\.1|::1)\(family:[46], host:localhost\) is not allowed\. .*SLIPWAY_NOTIFICATIONS_ALLOW_PRIVATE=1\)$/,
    );
    await expect(sendToChannel(config("127.0.0.1"), payload, new Date(), { allowPrivateTargets: false })).rejects.toThrow(/is not allowed/);
    expect(received.filter((r) => r.path === "/rebound")).toEqual([]);
    // Allowed, the same delivery arrives.
    expect(await sendToChannel(config("127.0.0.1"), payload, new Date(), { allowPrivateTargets: true })).toEqual({ ok: true, status: 200, excerpt: "thanks" });
    expect(received.filter((r) => r.path === "/rebound")).toHaveLength(1);
  });

  it("refuses an email channel's SMTP server on a private address when the rule is saved and when it sends, without connecting to it", async () => {
    const banner = await bannerServer();
    try {
      const email = (host: string) => ({
        type: "email" as const,
        smtp: { host, port: banner.port, secure: false },
        from: "slipway@example.test",
        to: ["ops@example.test"],
      });
      const refused: [string, string][] = [
        ["127.0.0.1", "127.0.0.1 is a loopback address"],
        ["localhost", "localhost \\((127\\.0\\.0\\.1|::1)\\) is a loopback address"],
        ["169.254.169.254", "169.254.169.254 is a link-local address"],
        ["10.1.2.3", "10.1.2.3 is a private address"],
      ];
      for (const [host, message] of refused) {
        const creating = guarded().notifications.create({ projectId, name: "internal mail", events: ["deployment.failed"], channel: email(host) });
        await expect(creating).rejects.toMatchObject({ code: "BAD_REQUEST" });
        await expect(creating).rejects.toThrow(new RegExp(`^${message}: notifications go to public addresses only, .*SLIPWAY_NOTIFICATIONS_ALLOW_PRIVATE=1`));
      }
      // A rule saved before (or a name that resolves elsewhere since) is refused when it sends.
      const payload = { id: "d-2", event: "notification.test", text: "hello" };
      for (const host of ["localhost", "127.0.0.1"]) {
        await expect(sendToChannel(email(host), payload, new Date(), { allowPrivateTargets: false })).rejects.toThrow(/is a loopback address/);
      }
      expect(banner.connections()).toBe(0);
    } finally {
      await banner.close();
    }
  });
});

describe("chat and email channels", () => {
  it("posts Slack's {text, blocks} and Discord's {content, embeds}", async () => {
    const slack = (
      await developer().notifications.create({
        projectId,
        name: "slack",
        events: ["deployment.failed"],
        channel: { type: "slack", url: `${receiverUrl}/slack/T0/B0/xyz` },
      })
    ).rule;
    const discord = (
      await developer().notifications.create({
        projectId,
        name: "discord",
        events: ["deployment.failed"],
        channel: { type: "discord", url: `${receiverUrl}/discord/1/abc` },
      })
    ).rule;
    expect(slack.target).not.toContain("xyz");
    await developer().notifications.test({ ruleId: slack.id });
    await developer().notifications.test({ ruleId: discord.id });
    await deliveredAll(slack.id, 1);
    await deliveredAll(discord.id, 1);
    const slackBody = JSON.parse(received.find((r) => r.path === "/slack/T0/B0/xyz")!.body);
    expect(slackBody.text).toMatch(/A test of the notification rule slack/);
    expect(slackBody.blocks[0]).toMatchObject({ type: "section", text: { type: "mrkdwn", text: slackBody.text } });
    const discordBody = JSON.parse(received.find((r) => r.path === "/discord/1/abc")!.body);
    expect(discordBody.content).toMatch(/A test of the notification rule discord/);
    expect(discordBody.embeds[0]).toMatchObject({ title: "notification.test", description: discordBody.content });
  });

  it("mails the event over SMTP with the channel's credentials: from, to, subject and body", async () => {
    const { rule } = await developer().notifications.create({
      projectId,
      environmentId: stagingId,
      name: "mail",
      events: ["deployment.succeeded"],
      channel: {
        type: "email",
        smtp: { host: "127.0.0.1", port: smtpPort, secure: false, user: "mailer", password: "smtp-password" },
        from: "slipway@example.test",
        to: ["ops@example.test", "dev@example.test"],
      },
    });
    expect(JSON.stringify(await developer().notifications.list({ projectId }))).not.toContain("smtp-password");
    const deploymentId = await deployStaging("succeeded");
    const [delivery] = await deliveredAll(rule.id, 1);
    expect(delivery!.status).toBe("DELIVERED");
    const mail = await eventually(() => mails.find((m) => m.text?.includes(deploymentId.slice(0, 8))), 5_000, "the mail");
    expect(mail.from?.text).toBe("slipway@example.test");
    expect((Array.isArray(mail.to) ? mail.to : [mail.to]).map((to) => to?.text).join(", ")).toBe("ops@example.test, dev@example.test");
    expect(mail.subject).toBe(`[Slipway] shop/staging: Deployment ${deploymentId.slice(0, 8)} (deploy) succeeded`);
    expect(mail.text).toContain("Event: deployment.succeeded");
  });

  it("logs an SMTP server's refusal as the attempt's error", async () => {
    const { rule } = await developer().notifications.create({
      projectId,
      name: "bad mail",
      events: ["deployment.failed"],
      enabled: false,
      channel: {
        type: "email",
        smtp: { host: "127.0.0.1", port: smtpPort, user: "mailer", password: "wrong" },
        from: "slipway@example.test",
        to: ["ops@example.test"],
      },
    });
    await developer().notifications.test({ ruleId: rule.id });
    const [delivery] = await eventually(async () => {
      const deliveries = await developer().notifications.deliveries({ ruleId: rule.id });
      return deliveries[0]?.attempts.length ? deliveries : undefined;
    });
    expect(delivery!.attempts[0]!.error).toMatch(/Invalid login|bad credentials/i);
    expect(delivery!.attempts[0]!.error).not.toContain("wrong");
  });

  it("keeps out of the attempt log what a server that is not an SMTP server says on connecting", async () => {
    const banner = await bannerServer();
    try {
      const { rule } = await developer().notifications.create({
        projectId,
        name: "not mail",
        events: ["deployment.failed"],
        enabled: false,
        channel: { type: "email", smtp: { host: "127.0.0.1", port: banner.port }, from: "slipway@example.test", to: ["ops@example.test"] },
      });
      await developer().notifications.test({ ruleId: rule.id });
      const [delivery] = await eventually(async () => {
        const deliveries = await developer().notifications.deliveries({ ruleId: rule.id });
        return deliveries[0]?.attempts.length ? deliveries : undefined;
      });
      expect(banner.connections()).toBeGreaterThan(0);
      expect(delivery!.attempts[0]!.error).toBe("the server did not answer as an SMTP server (on connecting)");
      await developer().notifications.delete({ ruleId: rule.id });
    } finally {
      await banner.close();
    }
  });
});

describe("previews", () => {
  it("notifies the blueprint's rules when a pull request creates a preview and when closing it deletes it", async () => {
    const rule = await addWebhookRule("/previews", ["preview.created", "preview.deleted"], { environmentId: stagingId });
    await developer().git.setPreviewBlueprint({ environmentId: stagingId, enabled: true });
    const { connection, secret } = await admin().git.connect({ provider: "generic", name: "ci" });
    const pullRequest = (action: "opened" | "closed") => ({
      action,
      number: 7,
      repository: "https://github.com/acme/shop.git",
      baseBranch: "main",
      headBranch: "feature",
      headCommit: "c".repeat(40),
    });
    const webhookUrl = connection.webhookUrl.replace("http://localhost:3000", intakeUrl);
    expect((await deliver(webhookUrl, { provider: "generic", secret, event: "pull_request", payload: pullRequest("opened") })).status).toBe(202);
    await deliveredAll(rule.id, 1);
    expect((await deliver(webhookUrl, { provider: "generic", secret, event: "pull_request", payload: pullRequest("closed") })).status).toBe(202);
    const deliveries = await deliveredAll(rule.id, 2);
    expect(deliveries.map((d) => d.status)).toEqual(["DELIVERED", "DELIVERED"]);
    const bodies = received.filter((r) => r.path === "/previews").map((r) => JSON.parse(r.body));
    expect(bodies.map((b) => [b.event, b.text])).toEqual([
      ["preview.created", "shop/staging: Preview pr-7 of pull request #7 created"],
      ["preview.deleted", "shop/staging: Preview pr-7 of pull request #7 deleted"],
    ]);
    expect(bodies[0]).toMatchObject({ preview: { number: 7 }, environment: { id: stagingId } });
  });

  it("notifies once when the reaper deletes a preview that expired while its pull request was open", async () => {
    const rule = await addWebhookRule("/reaped", ["preview.created", "preview.deleted"], { environmentId: stagingId });
    await developer().git.setPreviewBlueprint({ environmentId: stagingId, enabled: true, lifetimeSeconds: 3600 });
    const { connection, secret } = await admin().git.connect({ provider: "generic", name: "ci-expiry" });
    const webhookUrl = connection.webhookUrl.replace("http://localhost:3000", intakeUrl);
    const opened = {
      action: "opened",
      number: 8,
      repository: "https://github.com/acme/shop.git",
      baseBranch: "main",
      headBranch: "f8",
      headCommit: "d".repeat(40),
    };
    expect((await deliver(webhookUrl, { provider: "generic", secret, event: "pull_request", payload: opened })).status).toBe(202);
    await deliveredAll(rule.id, 1);
    const [preview] = await services.db
      .select()
      .from(gitPreviews)
      .where(and(eq(gitPreviews.number, 8), isNull(gitPreviews.closedAt)));
    // Its hour has passed.
    await services.db
      .update(environments)
      .set({ expiresAt: new Date(Date.now() - 1_000) })
      .where(eq(environments.id, preview!.environmentId));
    // The reaper runs every minute until the environment is gone: one notification all the same.
    for (let run = 0; run < 2; run++) {
      const reaped = await reapExpiredEnvironments(services, { dryRun: false, organizationId: org.organizationId });
      expect(reaped.environments.map((e) => e.environmentId)).toContain(preview!.environmentId);
    }
    const deliveries = await deliveredAll(rule.id, 2);
    expect(deliveries.map((d) => [d.event, d.status])).toEqual([
      ["preview.deleted", "DELIVERED"],
      ["preview.created", "DELIVERED"],
    ]);
    const deleted = received
      .filter((r) => r.path === "/reaped")
      .map((r) => JSON.parse(r.body))
      .find((b) => b.event === "preview.deleted");
    expect(deleted).toMatchObject({
      preview: { number: 8 },
      environment: { id: stagingId },
      text: "shop/staging: Preview pr-8 of pull request #8 deleted (expired)",
    });
    // Closing the pull request afterwards sends nothing more.
    expect((await deliver(webhookUrl, { provider: "generic", secret, event: "pull_request", payload: { ...opened, action: "closed" } })).status).toBe(202);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await developer().notifications.deliveries({ ruleId: rule.id })).toHaveLength(2);
  });
});

describe("an event no rule follows", () => {
  it("costs one statement: the rules are read with the environment's names (issue 17: every deployment's start and end comes here)", async () => {
    const quiet = await seedOrganization(services, "no-rules");
    const caller = createCaller({ services, actor: quiet.as("DEVELOPER") });
    const project = await caller.projects.create({ name: "quiet" });
    const environment = await caller.environments.create({ projectId: project.id, name: "dev" });
    const statements: string[] = [];
    const counted = drizzle(pool, { schema, logger: { logQuery: (query) => statements.push(query) } });
    const scope = { organizationId: quiet.organizationId, environmentId: environment.id };
    expect(await notify(counted, "deployment.succeeded", scope, { text: "deployed" }, new Date())).toBe(0);
    expect(statements).toHaveLength(1);
  });
});

describe("engines and transitions", () => {
  it("tells every rule of the organization that follows it that an engine disconnected", async () => {
    const rule = await addWebhookRule("/engines", ["engine.disconnected"]);
    await notifyEngineDisconnected(services.db, org.clusterId, "ping timeout", new Date());
    await deliveredAll(rule.id, 1);
    const body = JSON.parse(received.find((r) => r.path === "/engines")!.body);
    expect(body).toMatchObject({
      event: "engine.disconnected",
      cluster: { id: org.clusterId, name: "local" },
      text: "The engine of cluster local disconnected (ping timeout)",
    });
  });

  it("reports an engine still away after the grace period, once however often it flapped, and not one that came back within it", async () => {
    const away = await addWebhookRule("/engine-away", ["engine.disconnected"]);
    // Another organization, whose engine comes back.
    const other = await seedOrganization(services, "notify-back");
    const otherProject = await createCaller({ services, actor: other.as("DEVELOPER") }).projects.create({ name: "edge" });
    const { rule: back, secret } = await createCaller({ services, actor: other.as("DEVELOPER") }).notifications.create({
      projectId: otherProject.id,
      name: "back",
      events: ["engine.disconnected"],
      channel: { type: "webhook", url: `${receiverUrl}/engine-back` },
    });
    secrets.set("/engine-back", secret!);

    const start = Date.now();
    await engineDisconnected(services, org.clusterId, "transport close", new Date());
    await engineDisconnected(services, other.clusterId, "ping timeout", new Date());
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    // The first engine flaps: back for a moment (a heartbeat, stamped by its web process), gone
    // again (its check moves to a grace period after this).
    const heartbeat = async (clusterId: string) => {
      const stamps = createHeartbeatStamps(services.db, pino({ level: "silent" }));
      stamps.stamp(clusterId, new Date());
      await stamps.close();
    };
    await heartbeat(org.clusterId);
    const lastGone = Date.now();
    await engineDisconnected(services, org.clusterId, "transport close", new Date());
    // The other one is back within the grace period and stays.
    await heartbeat(other.clusterId);

    const [delivery] = await deliveredAll(away.id, 1, 15_000);
    expect(delivery!.status).toBe("DELIVERED");
    const request = received.find((r) => r.path === "/engine-away")!;
    expect(JSON.parse(request.body)).toMatchObject({ event: "engine.disconnected", cluster: { id: org.clusterId } });
    expect(Date.parse(JSON.parse(request.body).occurredAt)).toBeGreaterThanOrEqual(lastGone - 50);
    expect(Date.now() - lastGone).toBeGreaterThanOrEqual(ENGINE_GRACE_MS);
    // Well past the other engine's grace period: nothing was sent for it, and the flapping one was reported once.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, start + ENGINE_GRACE_MS + 2_000 - Date.now())));
    expect(await createCaller({ services, actor: other.as("DEVELOPER") }).notifications.deliveries({ ruleId: back.id })).toEqual([]);
    expect(received.filter((r) => r.path === "/engine-away")).toHaveLength(1);
  }, 30_000);

  it("derives the events of a status change: a batch that starts and ends a deployment sends both, a stop sends only its failure", () => {
    expect(deploymentTransitions("DEPLOY", "QUEUED", "BUILDING")).toEqual(["deployment.started"]);
    expect(deploymentTransitions("DEPLOY", "QUEUED", "DEPLOYED")).toEqual(["deployment.started", "deployment.succeeded"]);
    expect(deploymentTransitions("DEPLOY", "DEPLOYING", "DEPLOYMENT_ERROR")).toEqual(["deployment.failed"]);
    expect(deploymentTransitions("DEPLOY", "DEPLOYING", "DEPLOYING")).toEqual([]);
    expect(deploymentTransitions("STOP", "QUEUED", "STOPPING")).toEqual([]);
    expect(deploymentTransitions("STOP", "STOPPING", "DEPLOYMENT_ERROR")).toEqual(["deployment.failed"]);
    expect(deploymentTransitions("DEPLOY", "QUEUED", "CANCELED")).toEqual([]);
  });
});
