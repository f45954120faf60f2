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
import { createControlPlaneClient } from "../../engine/control-plane-client";
import { ENGINE_NAMESPACE, PROTOCOL_VERSION } from "../../engine/protocol/messages";
import { startLocalExec } from "../../engine/runtime/local/exec";
import { createShellSessions } from "../../engine/shell-sessions";
import { createCaller } from "../../server/api/root";
import type { Services } from "../../server/context";
import type { ShellExitMessage, ShellOpenAnswer, ShellOutputMessage } from "../../server/realtime/ui-protocol";
import { UI_NAMESPACE } from "../../server/realtime/ui-protocol";
import { startWebServer } from "../../server/web-server";
import { createTestDatabase } from "../database";
import { eventually } from "../engine-harness";
import { seedOrganization, testServices, type SeededOrganization } from "../support/seed";

type WebServer = Awaited<ReturnType<typeof startWebServer>>;

let services: Services;
let org: SeededOrganization;
let here: WebServer;
let there: WebServer;
let serviceId: string;
let token: string;
let home: string;
const sockets: Socket[] = [];

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
  await connectEngine(here);
});

afterAll(async () => {
  for (const socket of sockets) socket.disconnect();
  await there?.close();
  await here?.close();
  if (home) await fs.rm(home, { recursive: true, force: true });
});

function connected(socket: Socket): Promise<Socket> {
  sockets.push(socket);
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

/** Characters of output the engine shipped, acknowledged or not. */
let shipped = 0;

/** The engine's shell sessions, on processes of this machine, connected to `web` as engine/agent.ts connects them. */
async function connectEngine(web: WebServer) {
  const socket = await connected(
    io(`${web.url}${ENGINE_NAMESPACE}`, {
      auth: {
        token: org.engineToken,
        protocolVersion: PROTOCOL_VERSION,
        engineVersion: "test",
        capabilities: { runtime: "local", serviceKinds: ["APPLICATION"], shells: true },
      },
      transports: ["websocket"],
      reconnection: false,
      forceNew: true,
    }),
  );
  const client = createControlPlaneClient({ socket: () => socket });
  const shells = createShellSessions({
    exec: async (_serviceId, argv, options) => startLocalExec(argv, { ...options, cwd: os.tmpdir(), env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } }),
    send: (name, payload) => {
      if ("data" in payload) shipped += payload.data.length;
      client.notify(name, payload);
    },
    sendAcknowledged: async (payload) => {
      shipped += payload.data.length;
      await client.request("shell:output", payload);
    },
    logger: pino({ level: "silent" }),
  });
  const invalid = () => undefined;
  client.on(
    socket,
    "shell:open",
    (request, reply) =>
      void shells.open(request).then(
        () => reply({ ok: true }),
        (error: unknown) => reply({ ok: false, error: { code: "UNAVAILABLE", message: (error as Error).message } }),
      ),
    invalid,
  );
  client.on(socket, "shell:input", (input) => shells.input(input), invalid);
  client.on(socket, "shell:close", (close) => shells.close(close), invalid);
  client.on(socket, "shell:keepalive", (keepalive) => shells.keepalive(keepalive), invalid);
}

/** Output that went out while nothing read it: it grows past a first burst, then must stay put. */
async function heldBack(what: string, quietMs: number) {
  await eventually(() => shipped > 256 * 1024 || undefined, 10_000, "output to go out");
  await sleep(1_000);
  const before = shipped;
  await sleep(quietMs);
  expect(shipped, `output shipped while ${what}`).toBe(before);
  expect(before).toBeLessThan(MiB);
}

describe("a shell's output to a reader that falls behind for long", () => {
  it("waits for a browser silent for longer than the engine used to wait for it (10 s), then delivers all of it", async () => {
    shipped = 0;
    const socket = await connected(io(`${here.url}${UI_NAMESPACE}`, { auth: { token }, transports: ["websocket"], reconnection: false, forceNew: true }));
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
    shipped = 0;
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
