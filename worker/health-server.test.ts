import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, withDatabaseDown, type TestDatabase } from "../test/database";
import { startWorkerHealthServer } from "./health-server";

let database: TestDatabase;
let running = true;
let health: Awaited<ReturnType<typeof startWorkerHealthServer>>;

beforeAll(async () => {
  database = await createTestDatabase();
  health = await startWorkerHealthServer({ db: database.db, port: 0, host: "127.0.0.1", running: () => running });
});
afterAll(() => health?.close());

const probe = async (path: string) => {
  const response = await fetch(`http://127.0.0.1:${health.port}${path}`);
  return { status: response.status, body: (await response.json()) as unknown };
};

describe("the worker's health probes", () => {
  it("is live and ready while the database answers and the runner runs", async () => {
    expect(await probe("/api/health/live")).toEqual({ status: 200, body: { ok: true } });
    expect(await probe("/api/health/ready")).toEqual({ status: 200, body: { ok: true, database: "up" } });
  });

  it("is not ready while the database is down, and ready again once it is back; live throughout", async () => {
    await withDatabaseDown(database, async () => {
      expect(await probe("/api/health/ready")).toEqual({ status: 503, body: { ok: false, database: "down" } });
      expect((await probe("/api/health/live")).status).toBe(200);
    });
    expect((await probe("/api/health/ready")).status).toBe(200);
  });

  it("is not ready once its runner ended or it is stopping", async () => {
    running = false;
    expect(await probe("/api/health/ready")).toEqual({ status: 503, body: { ok: false, database: "up", runner: "down" } });
    running = true;
    health.stopping();
    expect((await probe("/api/health/ready")).status).toBe(503);
    expect((await fetch(`http://127.0.0.1:${health.port}/other`)).status).toBe(404);
  });
});
