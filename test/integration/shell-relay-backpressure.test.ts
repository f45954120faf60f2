/**
 * A shell's output to a client that does not keep up: real web servers (two, with the socket.io
 * Postgres adapter) on a real PostgreSQL, clients on `/ui` that stop reading their connection,
 * and the engine's own shell sessions (engine/shell-sessions.ts, its control-plane client, the
 * local runtime's processes) on a real `/engine` connection, wired as the agent wires them.
 */
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import { io, type Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
const sockets: Socket[] = [];
let engine: Awaited<ReturnType<typeof connectShellEngine>>;

const MiB = 1024 * 1024;
/** Some 2.9 MiB of output: far more than a session may have in flight. */
const LINES = 450_000;
const expected = Array.from({ length: LINES }, (_, index) => `${index + 1}\n`).join("");

beforeAll(async () => {
  const database = await createTestDatabase();
  services = testServices(database.db);
  org = await seedOrganization(services, "backpressure");
  token = await org.apiToken("DEVELOPER");
  const start = () => startWebServer({ services, databaseUrl: database.url, logger: pino({ level: "silent" }), port: 0, host: "127.0.0.1" });
  here = await start();
  there = await start();
  const api = createCaller({ services, actor: org.as("DEVELOPER") });
  const project = await api.projects.create({ name: "backpressure" });
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
});

/** A socket of this file's, disconnected after its tests. */
function connecting(socket: Socket): Promise<Socket> {
  sockets.push(socket);
  return connected(socket);
}

/**
 * A client on `web` running `seq` once told to: it shows output as it arrives (acknowledging what
 * asks for it, when it says it does), and can stop reading its connection, as a slow link or a
 * stalled tab does. `held` is what its web process sent it that it did not read yet.
 */
async function client(web: WebServer, options: { acknowledgesOutput: boolean }) {
  // A connection of its own (socket.io shares one per server by default): the engine's must not stop with it.
  const socket = await connecting(io(`${web.url}${UI_NAMESPACE}`, { auth: { token }, transports: ["websocket"], reconnection: false, forceNew: true }));
  const sessionId = randomUUID();
  const chunks = new Map<number, string>();
  let received = 0;
  let exit: ShellExitMessage | undefined;
  socket.on("shell:output", (message: ShellOutputMessage, acknowledge?: () => void) => {
    if (message.sessionId !== sessionId) return;
    chunks.set(message.seq, message.data);
    received += message.data.length;
    acknowledge?.();
  });
  socket.on("shell:exit", (message: ShellExitMessage) => {
    if (message.sessionId === sessionId) exit = message;
  });
  let sent = 0;
  web.io
    .of(UI_NAMESPACE)
    .sockets.get(socket.id!)!
    .onAnyOutgoing((event: string, message?: ShellOutputMessage) => {
      if (event === "shell:output" && message?.sessionId === sessionId) sent += message.data.length;
    });
  // The socket under socket.io's connection (a `ws` WebSocket in Node): paused, it reads nothing more.
  const connection = () => (socket.io.engine.transport as unknown as { ws: { pause(): void; resume(): void } }).ws;

  const answer = (await socket
    .timeout(20_000)
    .emitWithAck("shell:open", { sessionId, serviceId, argv: ["sh", "-c", `read go; seq ${LINES}`], ...options })) as ShellOpenAnswer;
  expect(answer).toEqual({ ok: true, sessionId });
  return {
    run: () => socket.emit("shell:input", { sessionId, data: "go\n" }),
    stopReading: () => connection().pause(),
    read: () => connection().resume(),
    held: () => sent - received,
    received: () => received,
    /** The exit, once the output before it arrived too (through another web process they may come in another order). */
    exited: async (timeoutMs = 60_000) => {
      const ended = await eventually(() => exit, timeoutMs, "the exit");
      await eventually(() => chunks.size >= ended.seq, 5_000, "the output before the exit");
      return ended;
    },
    text: () =>
      [...chunks.entries()]
        .sort(([a], [b]) => a - b)
        .map(([, data]) => data)
        .join(""),
    count: () => chunks.size,
  };
}

describe("a shell's output to a client that stops reading", () => {
  async function stallAndRead(shell: Awaited<ReturnType<typeof client>>) {
    shell.stopReading();
    const before = engine.shipped;
    shell.run();
    await eventually(() => engine.shipped - before > 256 * 1024, 10_000, "output to go out");
    await sleep(1_000);
    const shippedWhileStalled = engine.shipped - before;
    await sleep(1_000);
    // The engine stopped reading the command's output: it waits on its full pipe, it did not finish.
    expect(engine.shipped - before, "output shipped while the client did not read").toBe(shippedWhileStalled);
    expect(shippedWhileStalled).toBeLessThan(MiB);
    expect(shell.held(), "what the web process sent the client that it did not read").toBeLessThan(MiB);
    expect(shell.received()).toBe(0);

    shell.read();
    const exit = await shell.exited();
    expect(exit.code).toBe(0);
    expect(exit.seq).toBe(shell.count());
    expect(shell.text() === expected, "the output, complete and in order").toBe(true);
    expect(shell.held()).toBe(0);
  }

  it("holds it back in the engine, not in the web process, then delivers all of it in order", async () => {
    await stallAndRead(await client(here, { acknowledgesOutput: true }));
  }, 60_000);

  it("does so through another web process than the engine's too", async () => {
    await stallAndRead(await client(there, { acknowledgesOutput: true }));
  }, 60_000);

  it("streams to a client that does not acknowledge output (an older one) as before", async () => {
    const shell = await client(there, { acknowledgesOutput: false });
    shell.run();
    // Shorter than a client's acknowledgement is waited for (30 s): it was not waited for.
    const exit = await shell.exited(20_000);
    expect(exit.code).toBe(0);
    expect(shell.text() === expected, "the output, complete and in order").toBe(true);
  }, 60_000);
});
