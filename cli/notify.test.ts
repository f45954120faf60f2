import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Runner } from "graphile-worker";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../test/engine-harness";
import { startWorker } from "../worker/runner";
import { startCliHarness, type CliHarness } from "./test-harness";

/** `slipway notify` against the real control plane and worker, delivering to a receiver on 127.0.0.1. */
let h: CliHarness;
let worker: Runner;
let receiver: http.Server;
let receiverUrl: string;
const bodies: { path: string; body: string }[] = [];

beforeAll(async () => {
  // Its receiver listens on 127.0.0.1, which an instance refuses by default.
  h = await startCliHarness({ notifications: { allowPrivateTargets: true, engineDisconnectGraceMs: 60_000 } });
  worker = await startWorker({ services: h.services, connectionString: h.database.url, logger: pino({ level: "silent" }) });
  receiver = http.createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
    req.on("end", () => {
      bodies.push({ path: req.url ?? "/", body });
      res.writeHead(200).end("ok");
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  expect((await h.cli(["login", "--url", h.url, "--token", h.ownerToken])).code).toBe(0);
  expect((await h.cli(["project", "create", "shop"])).code).toBe(0);
  expect((await h.cli(["env", "create", "shop/dev"])).code).toBe(0);
});

afterAll(async () => {
  await worker?.stop();
  receiver?.closeAllConnections();
  await new Promise((resolve) => receiver?.close(resolve));
});

describe("slipway notify", () => {
  it("adds a Slack rule with its URL from stdin, lists it masked, tests it and shows the delivery, then removes it", async () => {
    const added = await h.cli(["notify", "add", "shop/dev", "slack", "--on", "deployment.failed,deployment.succeeded", "--name", "team", "--url-stdin"], {
      stdin: `${receiverUrl}/services/T0/B0/secret-path\n`,
    });
    expect(added).toMatchObject({ code: 0, stderr: "" });
    expect(added.stdout).toMatch(/^Added slack rule team \(.+\) on deployment\.failed, deployment\.succeeded of shop\/dev to http:\/\/127\.0\.0\.1:\d+\/…\n$/);

    const listed = await h.cli(["notify", "list", "shop"]);
    expect(listed.stdout).toMatch(/team\s+slack\s+http:\/\/127\.0\.0\.1:\d+\/…\s+deployment\.failed,deployment\.succeeded\s+yes/);
    expect(listed.stdout).not.toContain("secret-path");

    const tested = await h.cli(["notify", "test", "team"]);
    expect(tested.stdout).toMatch(/^Queued test delivery .+ to team/);
    const deliveries = await eventually(async () => {
      const result = await h.cli(["notify", "deliveries", "team"]);
      return /DELIVERED/.test(result.stdout) ? result.stdout : undefined;
    });
    expect(deliveries).toMatch(/notification\.test\s+DELIVERED\s+1\s+200 ok/);
    expect(JSON.parse(bodies.find((b) => b.path === "/services/T0/B0/secret-path")!.body).text).toMatch(/A test of the notification rule team/);

    expect((await h.cli(["notify", "remove", "team"])).stdout).toMatch(/^Removed slack rule team/);
    expect((await h.cli(["notify", "list"])).stdout).toMatch(/^No notification rules yet/);
  });

  it("prints a generic webhook's signing secret once, and refuses an incomplete email channel", async () => {
    const added = await h.cli(["notify", "add", "shop", "webhook", "--on", "preview.created", "--url", `${receiverUrl}/hook`]);
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(/Signing secret \(shown only this once\):\n[0-9a-f]{64}\n/);
    expect((await h.cli(["notify", "list", "--json"])).stdout).not.toMatch(/[0-9a-f]{64}/);

    const email = await h.cli(["notify", "add", "shop", "email", "--on", "deployment.failed", "--to", "ops@example.test"]);
    expect(email.code).toBe(2);
    expect(email.stderr).toBe("error: an email channel needs --to, --from, --smtp-host and --smtp-port\n");
  });
});
