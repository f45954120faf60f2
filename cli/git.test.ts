import { createHmac, randomUUID } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { deployments } from "../server/db/schema";
import { processPendingDeliveries } from "../server/webhooks/process";
import { startCliHarness, type CliHarness, type CliResult } from "./test-harness";

let h: CliHarness;

beforeAll(async () => {
  h = await startCliHarness();
  expect(await h.cli(["login", "--url", h.url, "--token", h.ownerToken])).toMatchObject({ code: 0, stderr: "" });
  expect((await h.cli(["project", "create", "acme"])).code).toBe(0);
  expect((await h.cli(["env", "create", "acme/prod", "--mode", "PRODUCTION"])).code).toBe(0);
  expect((await h.cli(["service", "create", "acme/prod/api", "--git", "https://github.com/acme/api.git", "--branch", "main"])).code).toBe(0);
});

/** A failure is a non-zero code, nothing on stdout and exactly one `error:` line on stderr. */
function expectFailure(result: CliResult, code: number, message: RegExp) {
  expect(result.code).toBe(code);
  expect(result.stdout).toBe("");
  const lines = result.stderr.split("\n").filter(Boolean);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^error: /);
  expect(lines[0]).toMatch(message);
}

const COMMIT = "0123456789abcdef0123456789abcdef01234567";

/** A GitHub push of one commit to main of acme/api, signed with `secret`. */
async function sendPush(connectionId: string, secret: string, options: { deliveryId?: string; badSignature?: boolean } = {}) {
  const body = JSON.stringify({
    ref: "refs/heads/main",
    before: "0000000000000000000000000000000000000000",
    after: COMMIT,
    deleted: false,
    repository: {
      full_name: "acme/api",
      clone_url: "https://github.com/acme/api.git",
      html_url: "https://github.com/acme/api",
      ssh_url: "git@github.com:acme/api.git",
    },
    pusher: { name: "octocat" },
    sender: { login: "octocat" },
    head_commit: { id: COMMIT, message: "Fix the thing", added: [], removed: [], modified: ["src/index.ts"] },
    commits: [{ id: COMMIT, message: "Fix the thing", added: [], removed: [], modified: ["src/index.ts"] }],
  });
  const signature = createHmac("sha256", options.badSignature ? "not-the-secret" : secret)
    .update(body)
    .digest("hex");
  return fetch(`${h.url}/api/hooks/${connectionId}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-github-event": "push",
      "x-github-delivery": options.deliveryId ?? randomUUID(),
      "x-hub-signature-256": `sha256=${signature}`,
    },
    body,
  });
}

/** The connection id and secret printed by `git connect` and `git rotate`. */
function parseSecret(stdout: string): { id: string; secret: string } {
  const id = /connection \S+ \(([0-9a-f-]{36})\)/.exec(stdout)?.[1];
  const secret = /shown only this once\):\n([0-9a-f]+)\n/.exec(stdout)?.[1];
  expect(id).toBeDefined();
  expect(secret).toBeDefined();
  return { id: id!, secret: secret! };
}

describe("git connections and deliveries", () => {
  let connection: { id: string; secret: string };

  it("connects a provider and prints its webhook URL and secret once", async () => {
    const connected = await h.cli(["git", "connect", "github", "gh", "--api-token", "ghp_test"]);
    expect(connected).toMatchObject({ code: 0, stderr: "" });
    expect(connected.stdout).toMatch(/^Connected github connection gh \([0-9a-f-]{36}\)\.$/m);
    expect(connected.stdout).toMatch(/^Webhook URL:\s+http\S+\/api\/hooks\/[0-9a-f-]{36}$/m);
    expect(connected.stdout).toContain("X-Hub-Signature-256");
    connection = parseSecret(connected.stdout);
    expect(connection.secret).toMatch(/^[0-9a-f]{64}$/);

    expectFailure(await h.cli(["git", "connect", "github", "gh"]), 5, /gh/);
    expectFailure(await h.cli(["git", "connect", "gitea", "other"]), 2, /gitea/);
  });

  it("lists connections as a table and as JSON, without secrets", async () => {
    const list = await h.cli(["git", "list"]);
    expect(list.code).toBe(0);
    expect(list.stdout.split("\n")[0]).toMatch(/^NAME\s+PROVIDER\s+WEBHOOK URL\s+API TOKEN\s+REFUSED\s+CREATED\s+ID$/);
    expect(list.stdout).toMatch(new RegExp(`^gh\\s+github\\s+\\S+/api/hooks/${connection.id}\\s+yes\\s+0\\s+\\d+s ago\\s+${connection.id}$`, "m"));
    expect(list.stdout).not.toContain(connection.secret);
    const json = JSON.parse((await h.cli(["git", "list", "--json"])).stdout) as unknown[];
    expect(json).toEqual([expect.objectContaining({ id: connection.id, name: "gh", provider: "github", hasApiToken: true, rejectedDeliveries: 0 })]);
    expect(JSON.stringify(json)).not.toContain(connection.secret);
  });

  it("stores a signed delivery, counts a refused one, lists, pages and redelivers them", { timeout: 30_000 }, async () => {
    const deliveryId = randomUUID();
    const accepted = await sendPush(connection.id, connection.secret, { deliveryId });
    expect(accepted.status).toBe(202);
    expect((await sendPush(connection.id, connection.secret, { badSignature: true })).status).toBe(401);
    expect((await sendPush(connection.id, connection.secret)).status).toBe(202);

    // The intake counts refused deliveries in memory and writes them every few seconds.
    await expect
      .poll(async () => (JSON.parse((await h.cli(["git", "list", "--json"])).stdout) as { rejectedDeliveries: number }[])[0]!.rejectedDeliveries, {
        timeout: 10_000,
        interval: 250,
      })
      .toBe(1);

    const table = await h.cli(["git", "deliveries", "gh"]);
    expect(table.code).toBe(0);
    expect(table.stdout.split("\n")[0]).toMatch(/^SEQ\s+EVENT\s+STATUS\s+RECEIVED\s+DELIVERY\s+ID\s+OUTCOME$/);
    expect(table.stdout).toMatch(new RegExp(`^\\d+\\s+push\\s+PENDING\\s+\\d+s ago\\s+${deliveryId}\\s+[0-9a-f-]{36}\\s+waiting to be processed$`, "m"));

    const deliveries = JSON.parse((await h.cli(["git", "deliveries", "gh", "--json"])).stdout) as {
      id: string;
      seq: number;
      deliveryId: string;
      status: string;
    }[];
    expect(deliveries).toHaveLength(2);
    expect(deliveries[1]).toMatchObject({ deliveryId, status: "PENDING" });
    // Newest first; --before pages back past the newest.
    const page = await h.cli(["git", "deliveries", "gh", "--limit", "1"]);
    expect(page.stdout).toMatch(new RegExp(`^More: slipway git deliveries gh --before ${deliveries[0]!.seq}$`, "m"));
    const older = JSON.parse((await h.cli(["git", "deliveries", "gh", "--before", String(deliveries[0]!.seq), "--json"])).stdout) as { deliveryId: string }[];
    expect(older.map((d) => d.deliveryId)).toEqual([deliveryId]);
    expectFailure(await h.cli(["git", "deliveries", "gh", "--limit", "zero"]), 2, /--limit/);
    expectFailure(await h.cli(["git", "deliveries", "nope"]), 3, /Git connection "nope" not found/);

    // What the worker does: the push deploys acme/prod/api at the pushed commit.
    await processPendingDeliveries(h.services);
    const processed = await h.cli(["git", "deliveries", "gh"]);
    expect(processed.stdout).toMatch(/PROCESSED .*1 deployment/);
    const history = JSON.parse((await h.cli(["deployments", "acme/prod", "--json"])).stdout) as { origin: string }[];
    expect(history[0]).toMatchObject({ origin: "WEBHOOK" });

    const redelivered = await h.cli(["git", "redeliver", deliveries[1]!.id]);
    expect(redelivered).toMatchObject({ code: 0, stderr: "" });
    expect(redelivered.stdout).toBe(`Delivery ${deliveryId} (push) queued again: PENDING\n`);
    expect(JSON.parse((await h.cli(["git", "redeliver", deliveries[1]!.id, "--json"])).stdout)).toMatchObject({ id: deliveries[1]!.id, status: "PENDING" });
    expectFailure(await h.cli(["git", "redeliver", randomUUID()]), 3, /not found/i);
  });

  it("rotates the secret: the new one is shown once and the old one stops working", async () => {
    const rotated = await h.cli(["git", "rotate", "gh"]);
    expect(rotated.code).toBe(0);
    expect(rotated.stdout).toMatch(/^New secret for github connection gh/m);
    const next = parseSecret(rotated.stdout);
    expect(next.id).toBe(connection.id);
    expect(next.secret).not.toBe(connection.secret);
    // Web processes cache connections, but a rotation is announced to all of them through
    // Postgres: the new secret works at once (within a notification's delivery).
    await expect.poll(async () => (await sendPush(connection.id, next.secret)).status, { timeout: 1_000, interval: 50 }).toBe(202);
    expect((await sendPush(connection.id, connection.secret)).status).toBe(401);
  });

  it("disconnects a provider", async () => {
    expect((await h.cli(["git", "connect", "generic", "ci"])).code).toBe(0);
    const removed = await h.cli(["git", "disconnect", "ci"]);
    expect(removed.stdout).toMatch(/^Disconnected generic connection ci \(/);
    expect((await h.cli(["git", "list"])).stdout).not.toMatch(/^ci\s/m);
    expectFailure(await h.cli(["git", "disconnect", "ci"]), 3, /not found/);
  });
});

describe("service triggers", () => {
  it("prints the defaults, changes only what is given, and prints JSON", async () => {
    const shown = await h.cli(["service", "triggers", "acme/prod/api"]);
    expect(shown).toMatchObject({ code: 0, stderr: "" });
    expect(shown.stdout).toMatch(/^auto-deploy\s+on$/m);
    expect(shown.stdout).toMatch(/^include\s+any file$/m);
    expect(shown.stdout).toMatch(/^tags\s+off$/m);

    const set = await h.cli([
      "service",
      "triggers",
      "acme/prod/api",
      "--include",
      "src/**,package.json",
      "--include",
      "lib/**",
      "--exclude",
      "docs/**",
      "--tags",
      "on",
    ]);
    expect(set.code).toBe(0);
    expect(set.stdout).toMatch(/^include\s+src\/\*\*, package.json, lib\/\*\*$/m);
    expect(set.stdout).toMatch(/^exclude\s+docs\/\*\*$/m);
    expect(set.stdout).toMatch(/^tags\s+on$/m);

    const off = JSON.parse((await h.cli(["service", "triggers", "acme/prod/api", "--auto-deploy", "off", "--json"])).stdout) as unknown;
    expect(off).toMatchObject({ autoDeploy: false, includePaths: ["src/**", "package.json", "lib/**"], excludePaths: ["docs/**"], followTags: true });
    expectFailure(await h.cli(["service", "triggers", "acme/prod/api", "--auto-deploy", "maybe"]), 2, /on.*off/);
    expectFailure(await h.cli(["service", "triggers", "acme/prod"]), 2, /not a path/);
  });
});

describe("preview environments", () => {
  it("makes an environment a blueprint with a lifetime, lists its previews, and stops", async () => {
    const enabled = await h.cli(["env", "previews", "acme/prod", "--enable", "--lifetime", "24h"]);
    expect(enabled).toMatchObject({ code: 0, stderr: "" });
    expect(enabled.stdout).toMatch(/acme\/prod is a preview blueprint.*after 24h without a new commit/);
    expect(JSON.parse((await h.cli(["env", "previews", "acme/prod", "--enable", "--json"])).stdout)).toMatchObject({ enabled: true, lifetimeSeconds: null });

    expect((await h.cli(["env", "previews", "acme/prod"])).stdout).toBe(
      "No previews of acme/prod now: it is a preview blueprint, and no pull request has one open\n",
    );
    expect(JSON.parse((await h.cli(["env", "previews", "acme/prod", "--json"])).stdout)).toEqual([]);

    expect((await h.cli(["env", "previews", "acme/prod", "--disable"])).stdout).toMatch(/no longer creates previews/);
    expect((await h.cli(["env", "previews", "acme/prod"])).stdout).toBe("No previews of acme/prod: enable them with slipway env previews acme/prod --enable\n");
    expectFailure(await h.cli(["env", "previews", "acme/prod", "--enable", "--disable"]), 2, /--enable or --disable/);
    expectFailure(await h.cli(["env", "previews", "acme/prod", "--enable", "--lifetime", "soon"]), 2, /--lifetime "soon"/);
  });
});

describe("deploy a commit", () => {
  it("deploys a service at the given commit and refuses --commit without a service", async () => {
    expect((await h.cli(["env", "create", "acme/dev"])).code).toBe(0);
    expect((await h.cli(["service", "create", "acme/dev/web", "--git", "https://github.com/acme/web.git"])).code).toBe(0);
    const deployed = await h.cli(["deploy", "acme/dev/web", "--commit", "abcdef1", "--json"]);
    expect(deployed).toMatchObject({ code: 0, stderr: "" });
    expect(JSON.parse(deployed.stdout)).toMatchObject({ merged: false, deployment: { action: "DEPLOY", origin: "CLI", serviceIds: [expect.any(String)] } });
    expectFailure(await h.cli(["deploy", "acme/prod", "--commit", "abcdef1"]), 2, /--commit needs a service path/);
    expectFailure(await h.cli(["deploy", "acme/prod/api", "--commit", "main"]), 2, /expected a commit hash/);
  });

  it("asks for a build without the build cache with --no-cache, kept when another request merges into it", async () => {
    const snapshotOf = async (id: string) => {
      const [row] = await h.services.db.select({ snapshot: deployments.snapshot }).from(deployments).where(eq(deployments.id, id));
      return row!.snapshot;
    };
    const deploy = async (...flags: string[]) => {
      const result = await h.cli(["deploy", "acme/fresh/web", ...flags, "--json"]);
      expect(result).toMatchObject({ code: 0, stderr: "" });
      return JSON.parse(result.stdout) as { merged: boolean; deployment: { id: string } };
    };
    expect((await h.cli(["env", "create", "acme/fresh"])).code).toBe(0);
    expect((await h.cli(["service", "create", "acme/fresh/web", "--git", "https://github.com/acme/web.git"])).code).toBe(0);
    // Something runs (leased to the engine at once, and no engine takes it): each request waits, and merges into the one waiting.
    expect((await h.cli(["restart", "acme/fresh"])).code).toBe(0);
    const plain = await deploy();
    expect((await snapshotOf(plain.deployment.id)).noCache).toBeUndefined();
    expect(await deploy("--no-cache")).toMatchObject({ merged: true, deployment: { id: plain.deployment.id } });
    expect((await snapshotOf(plain.deployment.id)).noCache).toBe(true);
    expect(await deploy()).toMatchObject({ merged: true });
    expect((await snapshotOf(plain.deployment.id)).noCache).toBe(true);
  });
});
