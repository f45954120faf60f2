import pg from "pg";
import { beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../test/database";
import { testPort } from "../../test/support/ports";
import { AppError } from "../errors";
import { isDatabaseUnavailable } from "./errors";

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});

/** The error a promise rejects with (the test fails if it resolves). */
async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.unreachable("expected a failure"),
    (error: unknown) => error,
  );
}

describe("isDatabaseUnavailable", () => {
  it("is true for a server that refuses connections, and for a session the server ended (57P01)", async () => {
    const refused = new pg.Pool({ connectionString: `postgres://postgres@127.0.0.1:${await testPort()}/postgres` });
    expect(isDatabaseUnavailable(await failure(refused.query("select 1")))).toBe(true);
    await refused.end();

    const victim = new pg.Client({ connectionString: database.url });
    victim.on("error", () => {});
    await victim.connect();
    const { rows } = await victim.query<{ pid: number }>("select pg_backend_pid() as pid");
    const sleeping = failure(victim.query("select pg_sleep(10)"));
    await database.pool.query("select pg_terminate_backend($1)", [rows[0]!.pid]);
    expect(isDatabaseUnavailable(await sleeping)).toBe(true);
    // And what the next query on that client gets: not queryable any more.
    expect(isDatabaseUnavailable(await failure(victim.query("select 1")))).toBe(true);
    await victim.end().catch(() => {});
  });

  it("is true through drizzle's wrapping of the driver's error", async () => {
    const pool = new pg.Pool({ connectionString: `postgres://postgres@127.0.0.1:${await testPort()}/postgres` });
    const wrapped = new Error("Failed query: select 1", { cause: await failure(pool.query("select 1")) });
    expect(isDatabaseUnavailable(wrapped)).toBe(true);
    await pool.end();
  });

  it("is false for a wrong query, a constraint violation and a domain error", async () => {
    expect(isDatabaseUnavailable(await failure(database.pool.query("select from")))).toBe(false);
    expect(isDatabaseUnavailable(await failure(database.pool.query("select 1/0")))).toBe(false);
    expect(isDatabaseUnavailable(new AppError("NOT_FOUND", "project not found"))).toBe(false);
    expect(isDatabaseUnavailable(new Error("anything else"))).toBe(false);
  });
});
