import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const script = path.join(path.dirname(fileURLToPath(import.meta.url)), "webhooks.lua");

export type LoadResult = {
  /** Answers received (any status). */
  requests: number;
  perSecond: number;
  p50: number;
  p99: number;
  max: number;
  /** Connect, read and write errors. */
  errors: number;
  timeouts: number;
  statuses: Record<string, number>;
  durationSeconds: number;
  /** The row id of every 202 answer that named one. */
  answeredIds: string[];
};

export type LoadSettings = {
  url: string;
  body: string;
  headers: Record<string, string>;
  /** The header that carries the delivery id, unique per request: `<prefix>-<thread>-<n>`. */
  deliveryHeader: string;
  prefix: string;
  connections: number;
  durationSeconds: number;
};

/**
 * Drives `url` with wrk (Debian's `wrk` package) for a fixed time. wrk is the load generator
 * because it is written in C: autocannon, a Node process, spent about 90 µs of CPU per request,
 * as much as the intake it measured and on the same two cores; wrk spends about 20 µs.
 */
export async function driveWithWrk(settings: LoadSettings): Promise<LoadResult> {
  if (!new URL(settings.url).hostname.startsWith("127.")) throw new Error("the load generator only targets 127.0.0.1");
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-wrk-"));
  try {
    const bodyFile = path.join(dir, "body");
    const headersFile = path.join(dir, "headers");
    const idsFile = path.join(dir, "answered");
    await fs.writeFile(bodyFile, settings.body);
    await fs.writeFile(
      headersFile,
      Object.entries(settings.headers)
        .map(([name, value]) => `${name}\t${value}`)
        .join("\n"),
    );
    const args = ["--threads", "1", "--connections", String(settings.connections), "--duration", `${settings.durationSeconds}s`, "--timeout", "10s"];
    args.push("--script", script, settings.url, "--", bodyFile, headersFile, settings.deliveryHeader, settings.prefix, idsFile);
    const { stdout } = await run("wrk", args, { maxBuffer: 16 * 1024 * 1024 }).catch((error: NodeJS.ErrnoException) => {
      throw error.code === "ENOENT" ? new Error("the webhook benchmark needs wrk: apt-get install wrk") : error;
    });
    const summary = JSON.parse(stdout.trim().split("\n").at(-1)!) as Omit<LoadResult, "perSecond" | "answeredIds">;
    const answered = (await fs.readFile(idsFile, "utf8")).split("\n").filter(Boolean);
    return { ...summary, perSecond: summary.requests / summary.durationSeconds, answeredIds: answered };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
