import { once } from "node:events";
import pg from "pg";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../test/database";
import { guardPoolErrors } from "./client";

let database: TestDatabase;
let pool: pg.Pool;
/** The JSON lines the pool's errors were logged as, as the processes log them (server/boot.ts). */
const lines: string[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(line) });
  pool = new pg.Pool({ connectionString: database.url, max: 2 });
  guardPoolErrors(pool, (error) => logger.warn({ err: error }, "idle database connection failed"));
});
afterAll(() => pool?.end());

describe("a pooled connection that PostgreSQL ended", () => {
  it("is logged once, with its message, code and severity, without the pg client pg-pool attached to the error", async () => {
    const client = await pool.connect();
    const { rows } = await client.query<{ pid: number }>("select pg_backend_pid() as pid");
    client.release();
    // Listened to after guardPoolErrors' own listeners: once it fires, they have had the error.
    const poolError = once(pool, "error") as Promise<[Error & { client?: unknown }]>;
    // From another connection, as a PostgreSQL restart ends them all.
    await database.pool.query("select pg_terminate_backend($1)", [rows[0]!.pid]);
    const [error] = await poolError;

    const logged = lines.map((line) => ({ size: line.length, err: (JSON.parse(line) as { err: Record<string, unknown> }).err }));
    for (const { err, size } of logged) {
      expect(err).toMatchObject({ message: "terminating connection due to administrator command", code: "57P01", severity: "FATAL" });
      expect(err).not.toHaveProperty("client");
      expect(size).toBeLessThan(2_000);
    }
    expect(logged).toHaveLength(1);
    // Still on the error for code that looks for it, and the pool replaced the connection.
    expect(error.client).toBeInstanceOf(pg.Client);
    expect((await pool.query<{ one: number }>("select 1 as one")).rows).toEqual([{ one: 1 }]);
  });
});
