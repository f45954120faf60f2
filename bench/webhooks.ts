import { execFile } from "node:child_process";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { and, count, eq, like } from "drizzle-orm";
import { createCaller } from "../server/api/root";
import { webhookDeliveries } from "../server/db/schema";
import { signatureHeaders } from "../server/webhooks/signatures";
import { githubExample } from "../test/support/webhooks";
import type { startBenchControlPlane } from "./control-plane";

const run = promisify(execFile);
type ControlPlane = Awaited<ReturnType<typeof startBenchControlPlane>>;
const loadScript = path.join(path.dirname(fileURLToPath(import.meta.url)), "webhooks-load.ts");

export type LoadResult = {
  requests: number;
  perSecond: number;
  p50: number;
  p99: number;
  max: number;
  errors: number;
  timeouts: number;
  statuses: Record<string, number>;
  durationSeconds: number;
};

type LoadSettings = { url: string; body: string; headers: Record<string, string>; deliveryHeader: string; prefix: string; connections: number; amount?: number; durationSeconds: number };

async function load(settings: LoadSettings): Promise<LoadResult> {
  const { stdout } = await run(process.execPath, ["--import", "tsx", loadScript, JSON.stringify(settings)], { maxBuffer: 1024 * 1024 });
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as LoadResult;
}

async function storedWithPrefix(plane: ControlPlane, connectionId: string, prefix: string): Promise<number> {
  const [row] = await plane.services.db
    .select({ n: count() })
    .from(webhookDeliveries)
    .where(and(eq(webhookDeliveries.connectionId, connectionId), like(webhookDeliveries.deliveryId, `${prefix}%`)));
  return Number(row!.n);
}

/** The ceiling: a bare Node HTTP server that reads the body and answers 202, nothing else. */
async function startBareServer() {
  const server = http.createServer((req, res) => {
    req.on("data", () => {});
    req.on("end", () => res.writeHead(202, { "content-type": "application/json" }).end('{"status":"queued"}'));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * Webhook intake throughput: signed GitHub pushes (GitHub's own example payload, a unique
 * delivery id per request) against the real intake over HTTP on 127.0.0.1, beside a bare Node
 * server answering 202 in the same run. Every 202 must be a stored row: the stored count is
 * compared with the count of 202 answers.
 */
export async function measureWebhookIntake(plane: ControlPlane, options: { connections: number; durationSeconds: number }) {
  const admin = createCaller({ services: plane.services, actor: plane.org.as("ADMIN") });
  const { connection, secret } = await admin.git.connect({ provider: "github", name: "bench" });
  const url = `${plane.webUrl}/api/hooks/${connection.id}`;
  const body = JSON.stringify(githubExample("push", (e) => e.ref === "refs/heads/master"));
  const headers = { "content-type": "application/json", "x-github-event": "push", ...signatureHeaders("github", secret, body) };
  const common = { body, headers, deliveryHeader: "x-github-delivery", connections: options.connections };

  // Each target is first driven for 2 s; the measured run then sends a fixed number of requests
  // (that rate for the given duration) and awaits every answer, so each 202 can be counted.
  const measure = async (target: string, prefix: string) => {
    const warmup = await load({ ...common, url: target, prefix: `warmup-${prefix}`, amount: 0, durationSeconds: 2 });
    const amount = Math.max(options.connections * 10, Math.round(warmup.perSecond * options.durationSeconds));
    return { warmup, result: await load({ ...common, url: target, prefix, amount, durationSeconds: options.durationSeconds }) };
  };

  const bare = await startBareServer();
  let ceiling: LoadResult;
  try {
    ceiling = (await measure(bare.url, "bare")).result;
  } finally {
    await bare.close();
  }

  const intake = (await measure(url, "intake")).result;
  // Every answer of the measured run has arrived: its rows, by their delivery ids, must number its 202s.
  const stored = await storedWithPrefix(plane, connection.id, "intake-");

  // The worker processes what was stored (no service follows the example's repository).
  const started = performance.now();
  for (;;) {
    const [pending] = await plane.services.db
      .select({ n: count() })
      .from(webhookDeliveries)
      .where(and(eq(webhookDeliveries.connectionId, connection.id), eq(webhookDeliveries.status, "PENDING")));
    if (Number(pending!.n) === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const drainMs = performance.now() - started;

  return {
    payloadBytes: Buffer.byteLength(body),
    connections: options.connections,
    ceiling,
    intake,
    accepted: intake.statuses["202"] ?? 0,
    stored,
    drainMs,
  };
}
