import http from "node:http";
import type { AddressInfo } from "node:net";
import { createAdapter } from "@socket.io/postgres-adapter";
import pg from "pg";
import { Server } from "socket.io";
import { io as connect, type Socket } from "socket.io-client";
import { MessageType } from "socket.io-adapter";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../test/database";
import { eventually } from "../../test/engine-harness";
import { announceOnceSubscribed } from "./adapter-subscription";
import { firstAcceptedAnswer } from "./first-answer";

const ROOM = "cluster:c1";
const TIMEOUT_MS = 8_000;

let database: TestDatabase;
const pools: pg.Pool[] = [];
const servers: Server[] = [];
const clients: Socket[] = [];
/** Two web processes: the one asking, and the one an answering client is connected to. */
let asking: Server;
let holding: Server;
let holdingUrl: string;

beforeAll(async () => {
  database = await createTestDatabase();
  asking = await webProcessIo();
  holding = await webProcessIo();
  holdingUrl = `http://127.0.0.1:${(holding.httpServer.address() as AddressInfo).port}`;
  for (const server of servers) {
    await eventually(async () => (await server.of("/engine").adapter.serverCount()) === 2, 5_000, "the processes to count each other");
  }
});

afterAll(async () => {
  for (const client of clients) client.disconnect();
  for (const server of servers) await new Promise((resolve) => server.close(resolve));
  for (const pool of pools) await pool.end();
});

/** A web process's socket.io server with the Postgres adapter, as web-server.ts makes it. */
async function webProcessIo(): Promise<Server> {
  const pool = new pg.Pool({ connectionString: database.url, max: 4 });
  pools.push(pool);
  const httpServer = http.createServer();
  const server = new Server(httpServer, { adapter: createAdapter(pool) });
  servers.push(server);
  server.of("/engine").on("connection", (socket) => void socket.join(ROOM));
  await announceOnceSubscribed([server.of("/engine")], 10_000);
  await new Promise<void>((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
  return server;
}

/** A client in the room on the holding process that answers `ask` with what `answer` returns. */
async function answeringClient(answer: (payload: unknown) => unknown): Promise<Socket> {
  const client = connect(`${holdingUrl}/engine`, { transports: ["websocket"], forceNew: true, reconnection: false });
  clients.push(client);
  client.on("ask", (payload: unknown, ack: (answer: unknown) => void) => ack(answer(payload)));
  await new Promise<void>((resolve) => client.once("connect", () => resolve()));
  await eventually(
    async () => (await holding.of("/engine").in(ROOM).fetchSockets()).some((socket) => socket.id === client.id),
    5_000,
    "the client in the room",
  );
  return client;
}

/** What a web process killed without a goodbye leaves: a process counted until its heartbeats time out (10 s). */
async function ghostProcess(): Promise<void> {
  const heartbeat = JSON.stringify({ uid: "ghost-process", nsp: "/engine", type: MessageType.HEARTBEAT });
  await database.pool.query("select pg_notify($1, $2)", ["socket.io#/engine", heartbeat]);
  await eventually(async () => (await asking.of("/engine").adapter.serverCount()) === 3, 5_000, "the ghost to be counted");
}

const accept = (answer: unknown) => ((answer as { ok?: boolean }).ok ? answer : undefined);

describe("the first accepted answer from a room across web processes", () => {
  it("settles without one once every counted process answered and no client accepted, keeping the refusals", async () => {
    const client = await answeringClient(() => ({ ok: false, error: "not here" }));
    const startedAt = Date.now();
    const result = await firstAcceptedAnswer(asking.of("/engine"), ROOM, "ask", {}, { timeoutMs: TIMEOUT_MS, accept });
    expect(result).toEqual({ answers: [{ ok: false, error: "not here" }] });
    expect(Date.now() - startedAt).toBeLessThan(TIMEOUT_MS / 2);
    client.disconnect();
  });

  it("settles with an answer from another process at once, while a killed process is still counted", async () => {
    const client = await answeringClient((payload) => ({ ok: true, echo: payload }));
    await ghostProcess();
    const startedAt = Date.now();
    const result = await firstAcceptedAnswer(asking.of("/engine"), ROOM, "ask", { n: 1 }, { timeoutMs: TIMEOUT_MS, accept });
    expect(result.accepted).toEqual({ ok: true, echo: { n: 1 } });
    // socket.io's emitWithAck waited for the ghost's count until the timeout.
    expect(Date.now() - startedAt).toBeLessThan(TIMEOUT_MS / 2);
    client.disconnect();
  });

  it("settles at the timeout with nothing when a counted process never answers", async () => {
    await ghostProcess();
    const result = await firstAcceptedAnswer(asking.of("/engine"), ROOM, "ask", {}, { timeoutMs: 1_000, accept });
    expect(result).toEqual({ answers: [] });
  });
});
