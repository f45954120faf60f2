import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OUTPUTS_FILE_MAX_BYTES, runJob } from "./job-runs";

/**
 * The outputs file lies where the job's own code can write: whatever it leaves at that path (a
 * link to a host file, a named pipe, a huge file) must neither hang nor leak into the outputs.
 */
describe("a job run's outputs file", () => {
  let dir: string;
  /** A file of the engine's host the job may name but must never read through the engine. */
  let engineSecret: string;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-job-outputs-"));
    engineSecret = path.join(dir, "engine-token.json");
    await fs.writeFile(engineSecret, JSON.stringify({ TOKEN: "engine-secret-token" }));
  });

  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** Runs a job of one attempt that exits 0 after `leave` put something at its outputs path. */
  async function runLeaving(leave: (outputFile: string) => Promise<void>) {
    const system: string[] = [];
    const result = await runJob({
      runId: "run-1",
      trigger: "start",
      timeoutSeconds: 10,
      retries: 0,
      outputFile: path.join(dir, `${randomUUID()}.json`),
      attempt: async ({ outputFile }) => {
        await leave(outputFile);
        return { code: 0, signal: null, timedOut: false, aborted: false };
      },
      output: (fd, text) => {
        if (fd === "system") system.push(text);
      },
    });
    return { outcome: result.run.outcome, outputs: result.outputs, system };
  }

  it("returns the object a run wrote as strings, and nothing when it wrote no file", async () => {
    const wrote = await runLeaving((file) => fs.writeFile(file, JSON.stringify({ GREETING: "hello", SEED_ROWS: 3, READY: true })));
    expect(wrote).toEqual({ outcome: "succeeded", outputs: { GREETING: "hello", SEED_ROWS: "3", READY: "true" }, system: [] });

    expect(await runLeaving(async () => undefined)).toEqual({ outcome: "succeeded", outputs: {}, system: [] });
  });

  it("does not follow a symbolic link or a hard link to a file of the engine's host", async () => {
    const linked = await runLeaving((file) => fs.symlink(engineSecret, file));
    expect(linked).toEqual({
      outcome: "failed",
      outputs: {},
      system: ["the outputs file ($SLIPWAY_OUTPUT_FILE) is a symbolic link: write the outputs into the file itself"],
    });

    const hardLinked = await runLeaving((file) => fs.link(engineSecret, file));
    expect(hardLinked).toEqual({
      outcome: "failed",
      outputs: {},
      system: ["the outputs file ($SLIPWAY_OUTPUT_FILE) has other hard links: write a file of its own"],
    });
  });

  it("fails a run that left a named pipe instead of waiting for a writer that never comes", { timeout: 5_000 }, async () => {
    const piped = await runLeaving(async (file) => {
      await promisify(execFile)("mkfifo", [file]);
    });
    expect(piped).toEqual({ outcome: "failed", outputs: {}, system: ["the outputs file ($SLIPWAY_OUTPUT_FILE) must be a regular file"] });
  });

  it(`refuses a file larger than ${OUTPUTS_FILE_MAX_BYTES} bytes without reading it`, async () => {
    const huge = await runLeaving((file) => fs.writeFile(file, JSON.stringify({ BIG: "x".repeat(OUTPUTS_FILE_MAX_BYTES) })));
    expect(huge).toEqual({ outcome: "failed", outputs: {}, system: ["the outputs file ($SLIPWAY_OUTPUT_FILE) is larger than 1 MiB: not read"] });
  });

  it("tells where a file is not valid JSON, never what it holds", async () => {
    const text = await runLeaving((file) => fs.writeFile(file, "secret-start-of-the-file, not JSON"));
    expect(text).toEqual({ outcome: "failed", outputs: {}, system: ["the outputs file ($SLIPWAY_OUTPUT_FILE) is not valid JSON"] });

    const placed = await runLeaving((file) => fs.writeFile(file, '{"A": 1,\n "B" 2}'));
    expect(placed.system).toEqual(["the outputs file ($SLIPWAY_OUTPUT_FILE) is not valid JSON (at line 2, column 6)"]);

    const cut = await runLeaving((file) => fs.writeFile(file, '{"A": "secret'));
    expect(cut.system).toEqual(["the outputs file ($SLIPWAY_OUTPUT_FILE) is not valid JSON (at line 1, column 14)"]);
  });
});
