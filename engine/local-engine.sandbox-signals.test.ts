import fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineHome, eventually, fixture, service, task } from "../test/engine-harness";
import { appPid } from "../test/support/app-process";
import { type GitServer, startGitServer } from "../test/git-server";
import type { Engine } from "./core";

/**
 * An app in its sandbox starts with the signal dispositions of an app started anywhere else:
 * SIGINT and SIGQUIT at their defaults. The release's keeper once ran bubblewrap as a background
 * job of its shell, which POSIX starts with SIGINT and SIGQUIT ignored; an ignored signal stays
 * ignored across exec, and a shell inside cannot undo it, so Python never raised
 * KeyboardInterrupt and a start script's `trap ... INT` never ran.
 */

/** Python's standard library and no signal handler of its own: what SIGINT does is Python's default. */
const PLAIN_PYTHON_APP = `
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
`;
import { isProcessAlive } from "./runtime/local/processes";

const SIGINT_BIT = 1n << 1n;
const SIGQUIT_BIT = 1n << 2n;

/** A field of /proc/<pid>/status (SigIgn: the mask of ignored signals, bit n-1 for signal n). */
function statusField(pid: number, field: string): string {
  const value = new RegExp(`^${field}:\\s*(.*)$`, "m").exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  if (value === undefined) throw new Error(`no ${field} in /proc/${pid}/status`);
  return value.trim();
}

describe("local engine: signals a sandboxed app starts with", () => {
  let git: GitServer;
  let env: Awaited<ReturnType<typeof engineHome>>;
  let engine: Engine;
  const plain = () =>
    service({
      id: "5c0b9e7a-2d41-4f38-8e6a-7b1c3d5f9a20",
      name: "plain",
      config: { git: { url: git.url("plain") }, startCommand: "exec python3 -u app.py" },
    });
  const runtimeLines = (serviceId: string) =>
    env.lines.filter((line) => line.stream.kind === "service" && line.stream.serviceId === serviceId).map((line) => line.text);

  beforeAll(async () => {
    git = await startGitServer();
    await git.createRepo("plain", fixture("node-app"), { "app.py": PLAIN_PYTHON_APP });
    // The host's own sandbox (bubblewrap), as `npm start` runs it.
    env = await engineHome({ drainTimeoutMs: 300, stopGraceMs: 2_000 });
    engine = env.newEngine();
    await engine.start();
  });

  afterAll(async () => {
    await env?.cleanup();
    await git?.close();
  });

  it("has SIGINT and SIGQUIT at their defaults, so a SIGINT ends a Python app with KeyboardInterrupt", { timeout: 90_000 }, async () => {
    const deployment = task("DEPLOY", [plain()]);
    await engine.execute(deployment);
    expect(env.final(deployment.deploymentId)?.status).toBe("succeeded");
    expect(
      env.lines.some((line) => line.stream.kind === "deployment" && line.stream.deploymentId === deployment.deploymentId && /^Sandbox: /.test(line.text)),
    ).toBe(true);
    const app = appPid(engine.services().find((entry) => entry.serviceId === plain().id)?.port);
    // In its sandbox's PID namespace: NSpid lists a pid per namespace.
    expect(statusField(app, "NSpid").split(/\s+/).length).toBeGreaterThan(1);

    const ignored = BigInt(`0x${statusField(app, "SigIgn")}`);
    expect(ignored & SIGINT_BIT, `SigIgn ${ignored.toString(16)}: SIGINT ignored`).toBe(0n);
    expect(ignored & SIGQUIT_BIT, `SigIgn ${ignored.toString(16)}: SIGQUIT ignored`).toBe(0n);

    // Ctrl-C, as an operator's `kill -INT` gives it.
    process.kill(app, "SIGINT");
    await eventually(() => !isProcessAlive(app), 10_000, "the app to end on SIGINT");
    await eventually(() => runtimeLines(plain().id).some((line) => line.startsWith("KeyboardInterrupt")), 10_000, "KeyboardInterrupt in the app's log");
  });
});
