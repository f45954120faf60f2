import http from "node:http";
import { createAdapter } from "@socket.io/postgres-adapter";
import pg from "pg";
import { Server } from "socket.io";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../test/database";
import { eventually } from "../../test/engine-harness";
import { announceOnceSubscribed } from "./adapter-subscription";

/** Well under the adapter's heartbeat interval (5 s), after which a process is heard anyway. */
const HEARD_WITHIN_MS = 2_000;

let database: TestDatabase;
const pools: pg.Pool[] = [];
const servers: Server[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  // Closing a server closes its adapters, which give their LISTEN connection back to the pool.
  for (const server of servers) await new Promise((resolve) => server.close(resolve));
  for (const pool of pools) await pool.end();
});

/** A web process's socket.io server as web-server.ts makes it, without HTTP. */
function webProcessIo(): Server {
  const pool = new pg.Pool({ connectionString: database.url, max: 4 });
  pools.push(pool);
  const server = new Server(http.createServer(), { adapter: createAdapter(pool) });
  servers.push(server);
  return server;
}

describe("announcing a web process once its realtime adapter listens", () => {
  it("has a new process count the running ones at once, and them count it", async () => {
    const running = webProcessIo();
    expect(await announceOnceSubscribed([running.of("/engine")], 10_000)).toBe(true);
    const started = webProcessIo();
    expect(await announceOnceSubscribed([started.of("/engine")], 10_000)).toBe(true);
    const announcedAt = Date.now();
    for (const server of [started, running]) {
      await eventually(async () => (await server.of("/engine").adapter.serverCount()) === 2, HEARD_WITHIN_MS, "the processes to count each other");
    }
    expect(Date.now() - announcedAt).toBeLessThan(HEARD_WITHIN_MS);
  });

  it("waits for nothing with an adapter that has no Postgres connection", async () => {
    const alone = new Server(http.createServer());
    servers.push(alone);
    expect(await announceOnceSubscribed([alone.of("/engine")], 10_000)).toBe(false);
  });
});
