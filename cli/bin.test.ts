import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import type { DeploymentEvent } from "../engine/protocol/events";
import { deployments } from "../server/db/schema";
import { appendEngineEvents } from "../server/deployments/events";
import { recordLogBatch } from "../server/engines/engine-session";
import { eventually } from "../test/engine-harness";
import { startCliHarness, type CliHarness } from "./test-harness";

/** The executable itself: tsx registration, exit codes of the real process, Ctrl-C on a follow. */
const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../bin/slipway.js");
let h: CliHarness;

beforeAll(async () => {
  h = await startCliHarness();
  await h.cli(["login", "--url", h.url, "--token", h.ownerToken]);
  await h.cli(["project", "create", "shop"]);
  await h.cli(["env", "create", "shop/dev"]);
  await h.cli(["service", "create", "shop/dev/web", "--git", "https://example.test/shop.git"]);
});

function run(args: string[], options: { onStdout?: (text: string, child: ReturnType<typeof spawn>) => void } = {}) {
  const child = spawn(process.execPath, [bin, ...args], {
    // The user's own SLIPWAY_URL/TOKEN must not leak in (spawn drops undefined values).
    env: { ...process.env, HOME: path.dirname(h.configFile), SLIPWAY_CONFIG: h.configFile, SLIPWAY_URL: undefined, SLIPWAY_TOKEN: undefined },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
    options.onStdout?.(stdout, child);
  });
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

describe("bin/slipway.js", () => {
  it("runs commands and exits with their code", async () => {
    expect(await run(["service", "list", "shop/dev"])).toMatchObject({ code: 0, stdout: expect.stringMatching(/^NAME\s+KIND/), stderr: "" });
    expect(await run(["env", "list", "demo"])).toEqual({ code: 3, stdout: "", stderr: 'error: Project "demo" not found\n' });
    expect(await run(["nope"])).toMatchObject({ code: 2, stdout: "" });
  });

  it("ends logs --follow cleanly on Ctrl-C", async () => {
    const serviceId = (await h.cli(["service", "list", "shop/dev", "--json"])).stdout.match(/"id": "([0-9a-f-]{36})"/)![1]!;
    await recordLogBatch(h.services, h.org.clusterId, { kind: "service", serviceId, releaseId: "r1" }, [
      { seq: 1, at: new Date().toISOString(), fd: "stdout", text: "listening on 8000" },
    ]);
    const result = await run(["logs", "shop/dev/web", "--follow"], {
      onStdout: (text, child) => {
        if (text.includes("listening on 8000")) child.kill("SIGINT");
      },
    });
    expect(result).toEqual({ code: 0, stdout: "listening on 8000\n", stderr: "" });
  });

  it("stops quietly when the reader of its output goes away (`| head`)", async () => {
    const serviceId = (await h.cli(["service", "list", "shop/dev", "--json"])).stdout.match(/"id": "([0-9a-f-]{36})"/)![1]!;
    const at = new Date().toISOString();
    const lines = Array.from({ length: 2000 }, (_, index) => ({ seq: 100 + index, at, fd: "stdout" as const, text: `line ${index} ${"x".repeat(200)}` }));
    await recordLogBatch(h.services, h.org.clusterId, { kind: "service", serviceId, releaseId: "r1" }, lines);
    const result = await run(["logs", "shop/dev/web", "--json", "--tail", "all"], {
      // As `head` does once it has its lines: the pipe closes while the CLI is still writing.
      onStdout: (_text, child) => child.stdout?.destroy(),
    });
    expect(result).toMatchObject({ code: 141, stderr: "" });
  });

  it("stops quietly when the reader of deploy --watch --json goes away (`| head`)", async () => {
    let readerGone = false;
    const running = run(["deploy", "shop/dev", "--watch", "--json"], {
      onStdout: (_text, child) => {
        child.stdout?.destroy();
        readerGone = true;
      },
    });
    const queued = await eventually(
      async () => (await h.services.db.select().from(deployments).where(eq(deployments.status, "QUEUED")))[0],
      10_000,
      "the deployment",
    );
    let seq = 1;
    const event = (fields: Omit<DeploymentEvent, "seq" | "at">): DeploymentEvent => ({ seq: seq++, at: new Date().toISOString(), ...fields });
    // The engine starts it: the CLI prints that event, and its reader goes away, as `head -1` does.
    const started = await appendEngineEvents(h.services.db, h.services, queued, [event({ serviceId: null, step: "deployment", status: "started" })]);
    await eventually(() => readerGone || undefined, 10_000, "the first line read");
    // What the CLI prints next meets a closed pipe.
    await appendEngineEvents(h.services.db, h.services, started, [event({ serviceId: null, step: "deployment", status: "succeeded" })]);
    expect(await running).toMatchObject({ code: 141, stderr: "" });
  });
});
