import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createEngineLogger } from "./logger";
import { LOG_REDACTION } from "./protocol/log-redaction";

/** Collects a logger's JSON lines. */
function sink() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().trim().split("\n"));
      done();
    },
  });
  return { stream, lines };
}

describe("the engine's logger", () => {
  // Issue 13: the engine and its router logged with a bare pino, without the control plane's
  // redaction; both sides now redact the same paths (engine/protocol/log-redaction.ts).
  it("redacts tokens, passwords, secrets and values as the control plane's logger does, and keeps the rest", () => {
    const secrets = ["swe_engine-token", "swp_api-token", "hunter2", "webhook-secret", "s3cr3t-value", "Bearer swp_header", "authjs.session-token=abc"];
    const { stream, lines } = sink();
    createEngineLogger({ name: "slipway-engine", level: "info" }, stream).info(
      {
        token: secrets[0],
        config: { token: secrets[1], password: secrets[2] },
        secret: secrets[3],
        variable: { key: "DATABASE_PASSWORD", value: secrets[4] },
        headers: { authorization: secrets[5], cookie: secrets[6] },
        deploymentId: "d-1",
      },
      "task received",
    );
    const [line] = lines;
    for (const secret of secrets) expect(line).not.toContain(secret);
    expect(JSON.parse(line!)).toMatchObject({
      name: "slipway-engine",
      msg: "task received",
      deploymentId: "d-1",
      token: LOG_REDACTION.censor,
      variable: { key: "DATABASE_PASSWORD", value: LOG_REDACTION.censor },
    });
  });
});
