import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import { io, type Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/database";
import { eventually } from "../../test/engine-harness";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { connected, connectShellEngine } from "../../test/support/shell-engine";
import { createCaller } from "../api/root";
import { startWebServer } from "../web-server";
import { UI_NAMESPACE, type ShellExitMessage, type ShellOpenAnswer, type ShellOutputMessage } from "./ui-protocol";

/**
 * A shell client that stays connected and reads its output but does not acknowledge it (it said
 * `acknowledgesOutput`): a dashboard tab in the background, whose terminal processes output on
 * timers the browser throttles there. Its session's process waits for it, however long: no output
 * is let out meanwhile, and the session is not ended for it. Two web processes with the socket.io
 * Postgres adapter on a real PostgreSQL; the engine's own shell sessions, running real processes,
 * connected to one of them.
 */
type WebServer = Awaited<ReturnType<typeof startWebServer>>;

let here: WebServer;
let there: WebServer;
let org: SeededOrganization;
let serviceId: string;
let token: string;
const sockets: Socket[] = [];

/** Some 2.9 MiB of output: far more than a session may have in flight. */
const LINES = 450_000;
const expected = Array.from({ length: LINES }, (_, index) => `${index + 1}\n`).join("");
/** Longer than the relay used to wait for a client's acknowledgement (30 s) before letting output out anyway. */
const SILENT_MS = 36_000;

beforeAll(async () => {
  const database = await createTestDatabase();
  const services = testServices(database.db);
  org = await seedOrganization(services, "stalled-client");
  token = await org.apiToken("DEVELOPER");
  const start = () => startWebServer({ services, databaseUrl: database.url, logger: pino({ level: "silent" }), port: 0, host: "127.0.0.1" });
  here = await start();
  there = await start();
  const api = createCaller({ services, actor: org.as("DEVELOPER") });
  const project = await api.projects.create({ name: "stalled" });
  const environment = await api.environments.create({ projectId: project.id, name: "dev" });
  serviceId = (await api.services.create({ environmentId: environment.id, name: "web", config: { git: { url: "file:///srv/app.git" } } })).id;
  const engine = await connectShellEngine(here.url, org.engineToken);
  sockets.push(engine.socket);
});

afterAll(async () => {
  for (const socket of sockets) socket.disconnect();
  await there?.close();
  await here?.close();
});

/** A client on `web` running `seq`: it reads every output message, and answers the acknowledgements asked for only once told to. */
async function silentClient(web: WebServer) {
  const socket = io(`${web.url}${UI_NAMESPACE}`, { auth: { token }, transports: ["websocket"], reconnection: false, forceNew: true });
  sockets.push(socket);
  await connected(socket);
  const sessionId = randomUUID();
  const chunks = new Map<number, string>();
  const unanswered: (() => void)[] = [];
  let answering = false;
  let received = 0;
  let exit: ShellExitMessage | undefined;
  socket.on("shell:output", (message: ShellOutputMessage, acknowledge?: () => void) => {
    if (message.sessionId !== sessionId) return;
    chunks.set(message.seq, message.data);
    received += message.data.length;
    if (acknowledge) unanswered.push(acknowledge);
    if (answering) for (const answer of unanswered.splice(0)) answer();
  });
  socket.on("shell:exit", (message: ShellExitMessage) => {
    if (message.sessionId === sessionId) exit = message;
  });
  const answer = (await socket
    .timeout(20_000)
    .emitWithAck("shell:open", { sessionId, serviceId, argv: ["sh", "-c", `read go; seq ${LINES}`], acknowledgesOutput: true })) as ShellOpenAnswer;
  expect(answer).toEqual({ ok: true, sessionId });
  return {
    run: () => socket.emit("shell:input", { sessionId, data: "go\n" }),
    received: () => received,
    exit: () => exit,
    /** It catches up: answers what it held back, and everything from now on. */
    answer: () => {
      answering = true;
      for (const answer of unanswered.splice(0)) answer();
    },
    text: () =>
      [...chunks.entries()]
        .sort(([a], [b]) => a - b)
        .map(([, data]) => data)
        .join(""),
    count: () => chunks.size,
    socket,
  };
}

describe("a shell client that reads but does not acknowledge its output", () => {
  it("holds its session's process back for as long as it is silent, on the engine's web process or another, then delivers all of it", async () => {
    // One on the engine's web process, one on another: waited for side by side.
    const shells = [await silentClient(here), await silentClient(there)];
    for (const shell of shells) shell.run();
    for (const shell of shells) await eventually(() => shell.received() > 256 * 1024 || undefined, 10_000, "output to arrive");
    await sleep(1_000);
    const before = shells.map((shell) => shell.received());

    await sleep(SILENT_MS);

    expect(
      shells.map((shell) => shell.received()),
      "output let out while the clients acknowledged nothing",
    ).toEqual(before);
    for (const shell of shells) {
      expect(shell.exit(), "the session was ended").toBeUndefined();
      expect(shell.socket.connected).toBe(true);
    }

    // Late, but answered: the sessions go on from where they waited.
    for (const shell of shells) shell.answer();
    for (const shell of shells) {
      const exit = await eventually(() => shell.exit(), 60_000, "the exit");
      await eventually(() => shell.count() >= exit.seq || undefined, 5_000, "the output before the exit");
      expect(exit.code).toBe(0);
      expect(shell.text() === expected, "the output, complete and in order").toBe(true);
    }
  }, 120_000);
});
