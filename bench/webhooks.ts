import fs from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import type { AddressInfo } from "node:net";
import { and, count, eq, inArray, like } from "drizzle-orm";
import { createCaller } from "../server/api/root";
import { webhookDeliveries } from "../server/db/schema";
import { signatureHeaders } from "../server/webhooks/providers";
import { githubExample } from "../test/support/webhooks";
import type { startBenchControlPlane } from "./control-plane";
import { cpuOfTree, postmasterPid } from "./cpu";
import { percentile } from "./stats";
import { driveWithWrk, type LoadResult } from "./wrk";

type ControlPlane = Awaited<ReturnType<typeof startBenchControlPlane>>;

async function countRows(plane: ControlPlane, ids: string[]): Promise<number> {
  let found = 0;
  for (let i = 0; i < ids.length; i += 10_000) {
    const [row] = await plane.services.db
      .select({ n: count() })
      .from(webhookDeliveries)
      .where(inArray(webhookDeliveries.id, ids.slice(i, i + 10_000)));
    found += Number(row!.n);
  }
  return found;
}

async function storedWithPrefix(plane: ControlPlane, connectionId: string, prefix: string): Promise<number> {
  const [row] = await plane.services.db
    .select({ n: count() })
    .from(webhookDeliveries)
    .where(and(eq(webhookDeliveries.connectionId, connectionId), like(webhookDeliveries.deliveryId, `${prefix}%`)));
  return Number(row!.n);
}

/**
 * The floor of a durable commit: an 8 kB write and fdatasync of a file beside PostgreSQL's data
 * (on the same disk as its WAL), as each committed batch waits for one. A 202 is sent only after
 * its batch's commit, so C senders get at most C answers per flush: on a disk shared with busy
 * neighbours, its p99 alone can exceed the intake's latency goal.
 */
async function measureCommitFloor(dataDir: string, samples = 200) {
  const file = await fs.open(path.join(dataDir, "..", "fsync-floor"), "w");
  const page = Buffer.alloc(8192, 1);
  const times: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      const started = performance.now();
      await file.write(page);
      await file.datasync();
      times.push(performance.now() - started);
    }
  } finally {
    await file.close();
    await fs.rm(path.join(dataDir, "..", "fsync-floor"));
  }
  return { p50: percentile(times, 50), p99: percentile(times, 99), samples };
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
 * server answering 202 in the same run. Every 202 must be a stored row: the row ids the 202s
 * named are looked up, and the run's stored rows counted against its 202 answers.
 */
export async function measureWebhookIntake(plane: ControlPlane, options: { connections: number; durationSeconds: number }) {
  const admin = createCaller({ services: plane.services, actor: plane.org.as("ADMIN") });
  const { connection, secret } = await admin.git.connect({ provider: "github", name: "bench" });
  const url = `${plane.webUrl}/api/hooks/${connection.id}`;
  const body = JSON.stringify(githubExample("push", (e) => e.ref === "refs/heads/master"));
  const headers = { "content-type": "application/json", "x-github-event": "push", ...signatureHeaders("github", secret, body) };
  const common = { body, headers, deliveryHeader: "x-github-delivery", connections: options.connections };

  // Each target is first driven for 2 s (connections, caches, JIT), then measured, with the CPU
  // (user and system time, whatever else loads the machine) each process spent in the measured run.
  const measure = async (target: string, prefix: string, cpuOf: Record<string, () => Promise<number>>) => {
    await driveWithWrk({ ...common, url: target, prefix: `warmup-${prefix}`, durationSeconds: 2 });
    const before = await Promise.all(Object.values(cpuOf).map((read) => read()));
    const result = await driveWithWrk({ ...common, url: target, prefix, durationSeconds: options.durationSeconds });
    const after = await Promise.all(Object.values(cpuOf).map((read) => read()));
    // Per answered delivery, in µs.
    const cpu = Object.fromEntries(Object.keys(cpuOf).map((name, i) => [name, ((after[i]! - before[i]!) * 1000) / result.requests]));
    return { ...result, cpuMicros: cpu };
  };

  // The bare server runs in this process, which does nothing else meanwhile (wrk is a process of its own).
  const benchCpu = async () => {
    const usage = process.cpuUsage();
    return (usage.user + usage.system) / 1000;
  };
  const bare = await startBareServer();
  let ceiling: LoadResult & { cpuMicros: Record<string, number> };
  try {
    ceiling = await measure(bare.url, "bare", { server: benchCpu });
  } finally {
    await bare.close();
  }

  const postgres = await postmasterPid(plane.postgresDataDir);
  const intake = await measure(url, "intake", { web: () => cpuOfTree(plane.webPid), postgres: () => cpuOfTree(postgres) });
  // A 202 is sent only after its row committed: every answered row id must be found.
  const answeredStored = await countRows(plane, intake.answeredIds);
  // wrk stops at the deadline with up to one request per connection unanswered; the intake may
  // still store those, so the run's rows number at least its 202s.
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
  const commitFloor = await measureCommitFloor(plane.postgresDataDir);

  return {
    payloadBytes: Buffer.byteLength(body),
    connections: options.connections,
    ceiling,
    intake,
    accepted: intake.statuses["202"] ?? 0,
    answeredStored,
    stored,
    drainMs,
    commitFloor,
  };
}
