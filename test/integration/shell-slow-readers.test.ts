/**
 * A shell's output to readers that fall behind for long: a browser tab silent for longer than the
 * engine used to wait for an acknowledgement (10 s), and `slipway shell` writing to a stdout that
 * does not keep up. Real web servers (two, with the socket.io Postgres adapter) on a real
 * PostgreSQL, the engine's own shell sessions (engine/shell-sessions.ts, its control-plane
 * client, the local runtime's processes) on a real `/engine` connection wired as engine/agent.ts
 * wires them, and the CLI itself.
 */
import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import { io, type Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../cli/main";
import { createCaller } from "../../server/api/root";
import type { Services } from "../../server/context";
import type { ShellExitMessage, ShellOpenAnswer, ShellOutputMessage } from "../../server/realtime/ui-protocol";
import { UI_NAMESPACE } from "../../server/realtime/ui-protocol";
import { startWebServer } from "../../server/web-server";
import { createTestDatabase } from "../database";
import { eventually } from "../engine-harness";
import { seedOrganization, testServices, type SeededOrganization } from "../support/seed";
import { connected, connectShellEngine } from "../support/shell-engine";

type WebServer = Awaited<ReturnType<typeof startWebServer>>;

let services: Services;
let org: SeededOrganization;
let here: WebServer;
let there: WebServer;
let serviceId: string;
let token: string;
let home: string;
const sockets: Socket[] = [];
let engine: Awaited<ReturnType<typeof connectShellEngine>>;

const MiB = 1024 * 1024;
/** Some 2.9 MiB of output: far more than a session may have in flight. */
const LINES = 450_000;
const expected = Array.from({ length: LINES }, (_, index) => `${index + 1}\n`).join("");

beforeAll(async () => {
  const database = await createTestDatabase();
  services = testServices(database.db);
  org = await seedOrganization(services, "slow-readers");
  token = await org.apiToken("DEVELOPER");
  home = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-slow-readers-"));
  const start = () => startWebServer({ services, databaseUrl: database.url, logger: pino({ level: "silent" }), port: 0, host: "127.0.0.1" });
  here = await start();
  there = await start();
  const api = createCaller({ services, actor: org.as("DEVELOPER") });
  const project = await api.projects.create({ name: "shop" });
  const environment = await api.environments.create({ projectId: project.id, name: "dev" });
  const service = await api.services.create({ environmentId: environment.id, name: "web", config: { git: { url: "file:///srv/app.git" } } });
  serviceId = service.id;
  engine = await connectShellEngine(here.url, org.engineToken);
  sockets.push(engine.socket);
});

afterAll(async () => {
  for (const socket of sockets) socket.disconnect();
  await there?.close();
  await here?.close();
  if (home) await fs.rm(home, { recursive: true, force: true });
});

/** A socket of this file's, disconnected after its tests. */
function connecting(socket: Socket): Promise<Socket> {
  sockets.push(socket);
  return connected(socket);
}

/** Output that went out while nothing read it: it grows past a first burst, then must stay put. */
async function heldBack(what: string, quietMs: number) {
  await eventually(() => engine.shipped > 256 * 1024 || undefined, 10_000, "output to go out");
  await sleep(1_000);
  const before = engine.shipped;
  await sleep(quietMs);
  expect(engine.shipped, `output shipped while ${what}`).toBe(before);
  expect(before).toBeLessThan(MiB);
}

describe("a shell's output to a reader that falls behind for long", () => {
  it("waits for a browser silent for longer than the engine used to wait for it (10 s), then delivers all of it", async () => {
    engine.shipped = 0;
    const socket = await connecting(io(`${here.url}${UI_NAMESPACE}`, { auth: { token }, transports: ["websocket"], reconnection: false, forceNew: true }));
    const sessionId = randomUUID();
    const chunks = new Map<number, string>();
    let exit: ShellExitMessage | undefined;
    socket.on("shell:output", (message: ShellOutputMessage, acknowledge?: () => void) => {
      if (message.sessionId !== sessionId) return;
      chunks.set(message.seq, message.data);
      acknowledge?.();
    });
    socket.on("shell:exit", (message: ShellExitMessage) => {
      if (message.sessionId === sessionId) exit = message;
    });
    // The socket under socket.io's connection (a `ws` WebSocket in Node): paused, it reads nothing more, as a stalled tab.
    const connection = () => (socket.io.engine.transport as unknown as { ws: { pause(): void; resume(): void } }).ws;
    const answer = (await socket
      .timeout(20_000)
      .emitWithAck("shell:open", { sessionId, serviceId, argv: ["sh", "-c", `read go; seq ${LINES}`], acknowledgesOutput: true })) as ShellOpenAnswer;
    expect(answer).toEqual({ ok: true, sessionId });
    connection().pause();
    socket.emit("shell:input", { sessionId, data: "go\n" });

    // Past the engine's former 10 s, short of the relay's own 30 s wait for a client.
    await heldBack("the browser read nothing", 14_000);

    connection().resume();
    const ended = await eventually(() => exit, 60_000, "the exit");
    await eventually(() => chunks.size >= ended.seq || undefined, 5_000, "the output before the exit");
    expect(ended.code).toBe(0);
    const text = [...chunks.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, data]) => data)
      .join("");
    expect(text === expected, "the output, complete and in order").toBe(true);
  }, 90_000);

  it("holds `slipway shell` back while its stdout does not take its output, then writes all of it", async () => {
    engine.shipped = 0;
    /** A stdout whose reader stopped (a slow terminal, a pipe to a stalled process): writes wait until released. */
    let written = "";
    let stalled = true;
    const held: (() => void)[] = [];
    const stdout = new Writable({
      decodeStrings: false,
      write(chunk: string, _encoding, callback) {
        written += chunk;
        if (stalled) held.push(callback);
        else callback();
      },
    });
    const release = () => {
      stalled = false;
      for (const callback of held.splice(0)) callback();
    };
    let stderr = "";
    const cli = runCli(["shell", "shop/dev/web", "--", "sh", "-c", `seq ${LINES}`], {
      stdout,
      stderr: { write: (chunk: string) => (stderr += chunk) },
      env: { SLIPWAY_URL: there.url, SLIPWAY_TOKEN: token, HOME: home },
    });

    await heldBack("stdout took nothing", 2_000);
    // Written or waiting in stdout's buffer: what the CLI was sent.
    expect(written.length + stdout.writableLength, "what the CLI was sent while its stdout took nothing").toBeLessThan(MiB);

    release();
    expect(await cli, stderr).toBe(0);
    expect(written === expected, "the output, complete and in order").toBe(true);
  }, 90_000);
});
