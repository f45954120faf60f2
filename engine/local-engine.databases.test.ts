import fs from "node:fs";
import net from "node:net";
import { testPort } from "../test/support/ports";
import pg from "pg";
import { createClient } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { database, engineHome, eventually, task } from "../test/engine-harness";
import { skipWithout } from "../test/support/requirements";
import type { Engine } from "./core";
import type { DatabaseServiceSpec } from "./protocol";
import { availableDatabases } from "./runtime/local/databases/driver";
import { appPid } from "../test/support/app-process";
import { layout } from "./runtime/local/layout";

const available = await availableDatabases();

async function query<T extends pg.QueryResultRow>(db: DatabaseServiceSpec, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ host: "127.0.0.1", ...db.config.connection });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

type RedisCommands = { get(key: string): Promise<string | null>; set(key: string, value: string): Promise<unknown> };

async function withRedis<T>(db: DatabaseServiceSpec, fn: (client: RedisCommands) => Promise<T>): Promise<T> {
  const client = createClient({
    socket: { host: "127.0.0.1", port: db.config.connection.port, reconnectStrategy: false },
    password: db.config.connection.password,
  });
  client.on("error", () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    client.destroy();
  }
}

describe("local engine: databases", () => {
  let env: Awaited<ReturnType<typeof engineHome>>;
  let engine: Engine;

  const run = async (action: Parameters<typeof task>[0], ...services: DatabaseServiceSpec[]) => {
    const t = task(action, services);
    await engine.execute(t);
    const final = env.final(t.deploymentId);
    return final;
  };

  beforeAll(async () => {
    env = await engineHome({ drainTimeoutMs: 1_000, stopGraceMs: 10_000, backoffBaseMs: 300 });
    engine = env.newEngine();
    await engine.start();
  });

  afterAll(async () => {
    await env?.cleanup();
  });

  it("reports PostgreSQL as available from the embedded binaries", () => {
    expect(available).toContain("postgresql");
  });

  describe("PostgreSQL", () => {
    let source: DatabaseServiceSpec;

    beforeAll(async () => {
      source = await database("postgresql", { name: "main-db" });
      expect(await run("DEPLOY", source)).toMatchObject({ status: "succeeded" });
    });

    it("serves its database to its own user and password only", async () => {
      await query(source, "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)");
      await query(source, "INSERT INTO items (name) VALUES ($1), ($2)", ["anchor", "rope"]);
      expect(await query(source, "SELECT current_database() AS db, current_user AS who")).toEqual([{ db: "main_db", who: "main_db" }]);
      await expect(
        query({ ...source, config: { ...source.config, connection: { ...source.config.connection, password: "wrong" } } }, "SELECT 1"),
      ).rejects.toThrow(/password authentication failed/);
    });

    it("keeps a running server on redeploy and its data across stop, start, a crash and an engine restart", async () => {
      const pid = engine.services().find((s) => s.serviceId === source.id);
      expect(await run("DEPLOY", source)).toMatchObject({ status: "succeeded" });
      expect(env.lines.some((line) => line.text.includes("already runs with this configuration"))).toBe(true);
      expect(engine.services().find((s) => s.serviceId === source.id)?.releaseId).not.toBe(undefined);
      expect(pid).toBeDefined();

      expect(await run("STOP", source)).toMatchObject({ status: "succeeded" });
      await expect(query(source, "SELECT 1")).rejects.toThrow();
      expect(await run("DEPLOY", source)).toMatchObject({ status: "succeeded" });
      expect((await query<{ name: string }>(source, "SELECT name FROM items ORDER BY id")).map((row) => row.name)).toEqual(["anchor", "rope"]);

      // A crashed server is restarted on the same port (applications were told that one).
      // (postmaster.pid holds its pid inside its sandbox: the host's is the listener's.)
      process.kill(appPid(source.config.connection.port), "SIGKILL");
      await eventually(async () => (await query(source, "SELECT count(*)::int AS n FROM items"))[0]?.n === 2, 20_000, "restarted after a crash");

      // The server outlives the engine; the next engine adopts it.
      await engine.shutdown();
      expect(await query(source, "SELECT count(*)::int AS n FROM items")).toEqual([{ n: 2 }]);
      engine = env.newEngine();
      await engine.start();
      expect(engine.services().find((s) => s.serviceId === source.id)).toMatchObject({ state: "running" });
    });

    it("starts the previous server again when the new one does not go live", async () => {
      const blocker = net.createServer();
      const takenPort = await testPort();
      await new Promise<void>((resolve) => blocker.listen(takenPort, "127.0.0.1", resolve));
      try {
        const moved = { ...source, config: { ...source.config, connection: { ...source.config.connection, port: takenPort } } };
        expect(await run("DEPLOY", moved)).toMatchObject({ status: "failed", message: expect.stringMatching(/port \d+ is taken/) });
        // Stopped to make way, then back on its own port with its data.
        await eventually(async () => (await query(source, "SELECT count(*)::int AS n FROM items"))[0]?.n === 2, 20_000, "the previous server back");
        expect(engine.services().find((s) => s.serviceId === source.id)).toMatchObject({ state: "running" });
      } finally {
        blocker.close();
      }
    });

    it("clones a running database's data into a new one with its own credentials; each changes alone", async () => {
      const clone = await database("postgresql", { name: "main-db", copyDataFrom: source.id });
      expect(await run("DEPLOY", clone)).toMatchObject({ status: "succeeded" });
      expect((await query<{ name: string }>(clone, "SELECT name FROM items ORDER BY id")).map((row) => row.name)).toEqual(["anchor", "rope"]);
      // The source's password does not open the clone.
      await expect(
        query({ ...clone, config: { ...clone.config, connection: { ...clone.config.connection, password: source.config.connection.password } } }, "SELECT 1"),
      ).rejects.toThrow(/password authentication failed/);

      await query(clone, "INSERT INTO items (name) VALUES ('clone only')");
      await query(source, "DELETE FROM items WHERE name = 'anchor'");
      expect((await query<{ name: string }>(clone, "SELECT name FROM items ORDER BY id")).map((row) => row.name)).toEqual(["anchor", "rope", "clone only"]);
      expect((await query<{ name: string }>(source, "SELECT name FROM items ORDER BY id")).map((row) => row.name)).toEqual(["rope"]);

      // Deleting the clone removes its data and leaves the source serving.
      expect(await run("DELETE", clone)).toMatchObject({ status: "succeeded" });
      expect(fs.existsSync(layout(env.home).serviceDir(clone.id))).toBe(false);
      expect(await query(source, "SELECT count(*)::int AS n FROM items")).toEqual([{ n: 1 }]);
    });

    it("refuses to copy data that is not on this engine, clearly", async () => {
      const orphan = await database("postgresql", { name: "orphan", copyDataFrom: "6f1d6c1e-0000-4000-8000-000000000000" });
      expect(await run("DEPLOY", orphan)).toMatchObject({ status: "failed", message: expect.stringMatching(/has no data on this engine/) });
    });

    it("fails clearly when its port is taken, and deletes its data with the service", async () => {
      const taken = await database("postgresql", { name: "taken" });
      taken.config.connection.port = source.config.connection.port;
      expect(await run("DEPLOY", taken)).toMatchObject({ status: "failed", message: expect.stringMatching(/port \d+ is taken/) });

      expect(await run("DELETE", source)).toMatchObject({ status: "succeeded" });
      expect(fs.existsSync(layout(env.home).dataDir(source.id))).toBe(false);
      await expect(query(source, "SELECT 1")).rejects.toThrow();
    });
  });

  describe.skipIf(skipWithout(available.includes("redis") ? null : "redis-server (apt-get install redis-server)"))("Redis", () => {
    it("keeps its data across stop and start, and clones it with data", async () => {
      const cache = await database("redis", { name: "cache" });
      expect(await run("DEPLOY", cache)).toMatchObject({ status: "succeeded" });
      await withRedis(cache, (client) => client.set("greeting", "ahoy"));
      expect(await run("STOP", cache)).toMatchObject({ status: "succeeded" });
      expect(await run("DEPLOY", cache)).toMatchObject({ status: "succeeded" });
      expect(await withRedis(cache, (client) => client.get("greeting"))).toBe("ahoy");

      const clone = await database("redis", { name: "cache", copyDataFrom: cache.id });
      expect(await run("DEPLOY", clone)).toMatchObject({ status: "succeeded" });
      expect(await withRedis(clone, (client) => client.get("greeting"))).toBe("ahoy");
      await withRedis(clone, (client) => client.set("greeting", "clone"));
      expect(await withRedis(cache, (client) => client.get("greeting"))).toBe("ahoy");
      // The clone's copy is append-only like any Redis here: it survives a restart.
      expect(await run("RESTART", clone)).toMatchObject({ status: "succeeded" });
      expect(await withRedis(clone, (client) => client.get("greeting"))).toBe("clone");

      expect(await run("DELETE", clone, cache)).toMatchObject({ status: "succeeded" });
    });
  });
});
