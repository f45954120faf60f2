import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { testPort } from "../../test/support/ports";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmbeddedPostgresChild } from "./embedded-postgres";
import { createSupervisor, type Supervisor } from "./supervisor";

const quiet = () => new Writable({ write: (_chunk, _encoding, done) => done() });
let directory: string;
let supervisor: Supervisor;

beforeAll(async () => {
  directory = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-pg-host-"));
  // As root, PostgreSQL runs as `postgres`, which must traverse the folder (mkdtemp makes it 0700).
  await fs.chmod(directory, 0o755);
  supervisor = createSupervisor({ stdout: quiet(), stderr: quiet() });
});
afterAll(async () => {
  supervisor.kill();
  await fs.rm(directory, { recursive: true, force: true });
});

describe("startEmbeddedPostgresChild", () => {
  const options = async () => ({
    dataDir: path.join(directory, "data"),
    port: await testPort(),
    password: "a-password-for-tests",
    logFile: path.join(directory, "postgres.log"),
  });

  it("serves a database until the supervisor stops it, and refuses a second server on the same data", async () => {
    const first = await options();
    const database = await startEmbeddedPostgresChild(supervisor, first);
    const client = new pg.Client({ connectionString: database.connectionString });
    await client.connect();
    expect((await client.query("select 1 as one")).rows).toEqual([{ one: 1 }]);
    await client.end();

    // A second server on the same data directory fails, and says why in PostgreSQL's own words.
    const second = createSupervisor({ stdout: quiet(), stderr: quiet() });
    await expect(startEmbeddedPostgresChild(second, { ...first, port: await testPort() })).rejects.toThrow(/postmaster\.pid/);
    await second.stop();

    await supervisor.stop();
    await expect(database.child.exited).resolves.toMatchObject({ code: 0, signal: null });
    const after = new pg.Client({ connectionString: database.connectionString });
    // Its socket went with it (through TCP, the refusal would read ECONNREFUSED).
    await expect(after.connect()).rejects.toThrow(/ENOENT|ECONNREFUSED/);
    expect(await fs.readFile(first.logFile, "utf8")).toContain("database system is shut down");
  });

  it("serves the platform through a Unix socket in its data directory, and tools on 127.0.0.1", async () => {
    const own = createSupervisor({ stdout: quiet(), stderr: quiet() });
    const settings = { ...(await options()), dataDir: path.join(directory, "socket") };
    const database = await startEmbeddedPostgresChild(own, settings);
    const clientAddress = async (connectionString: string) => {
      const client = new pg.Client({ connectionString });
      await client.connect();
      try {
        return (await client.query<{ address: string | null }>("select host(inet_client_addr()) as address")).rows[0]!.address;
      } finally {
        await client.end();
      }
    };
    const url = new URL(database.connectionString);
    expect(url.searchParams.get("host")).toBe(settings.dataDir);
    // No client address: a Unix socket's connection.
    expect(await clientAddress(database.connectionString)).toBeNull();
    // Only PostgreSQL's user (and root) can enter the directory that holds the socket.
    expect((await fs.stat(settings.dataDir)).mode & 0o777).toBe(0o700);
    url.searchParams.delete("host");
    expect(await clientAddress(url.toString())).toBe("127.0.0.1");
    await own.stop();
  });

  it("serves through TCP alone when the socket's path would be longer than the kernel takes", async () => {
    const own = createSupervisor({ stdout: quiet(), stderr: quiet() });
    const settings = { ...(await options()), dataDir: path.join(directory, "d".repeat(110)) };
    const database = await startEmbeddedPostgresChild(own, settings);
    expect(new URL(database.connectionString).searchParams.has("host")).toBe(false);
    const client = new pg.Client({ connectionString: database.connectionString });
    await client.connect();
    expect((await client.query("select host(inet_client_addr()) as address")).rows).toEqual([{ address: "127.0.0.1" }]);
    await client.end();
    await own.stop();
  });

  it("is started again, with its data, when its server is killed", async () => {
    const restarting = createSupervisor({ stdout: quiet(), stderr: quiet() });
    const settings = { ...(await options()), dataDir: path.join(directory, "killed") };
    const database = await startEmbeddedPostgresChild(restarting, settings);
    const query = async (sql: string) => {
      const client = new pg.Client({ connectionString: database.connectionString });
      await client.connect();
      try {
        return (await client.query(sql)).rows;
      } finally {
        await client.end();
      }
    };
    await query("create table kept (value text); insert into kept values ('still here')");

    const postmaster = Number((await fs.readFile(path.join(settings.dataDir, "postmaster.pid"), "utf8")).split("\n")[0]);
    process.kill(postmaster, "SIGKILL");
    let rows: unknown[] | null = null;
    for (const deadline = Date.now() + 30_000; rows === null && Date.now() < deadline;) {
      rows = await query("select value from kept").catch(() => null);
      if (rows === null) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(rows).toEqual([{ value: "still here" }]);
    expect(database.child.restarts).toBe(1);
    await restarting.stop();
  });
});
