import { execFile, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { testPort } from "./ports";
import pg from "pg";
import { eventually } from "../engine-harness";

const run = promisify(execFile);

/** The newest server Debian's `postgresql` package installed (/usr/lib/postgresql/<major>/bin), or null. */
export function debianPostgresBin(): string | null {
  const root = "/usr/lib/postgresql";
  const majors = fs.existsSync(root)
    ? fs.readdirSync(root).filter((name) => /^\d+$/.test(name) && fs.existsSync(path.join(root, name, "bin", "postgres")))
    : [];
  const newest = majors.sort((a, b) => Number(b) - Number(a))[0];
  return newest ? path.join(root, newest, "bin") : null;
}

export function pgbouncerBin(): string | null {
  return ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"].find((file) => fs.existsSync(file)) ?? null;
}

/**
 * PostgreSQL and PgBouncer refuse to run as root: as root, they run as Debian's `postgres` user
 * (which the package creates), through setpriv; otherwise as the current user.
 */
function asServiceUser(command: string, args: string[]): [string, string[]] {
  if (process.getuid?.() !== 0) return [command, args];
  return ["setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", "--", command, ...args]];
}

type Server = { child: ChildProcess; output: () => string; stop: () => Promise<void> };

function startServer(command: string, args: string[]): Server {
  const [file, argv] = asServiceUser(command, args);
  const child = spawn(file, argv, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    child,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGINT");
      await exited;
    },
  };
}

export type ExternalPostgres = {
  /** postgres://slipway:…@127.0.0.1:<port>/<database>, straight to the server. */
  url: (database: string) => string;
  createDatabase: (name: string) => Promise<string>;
  /** PgBouncer in session mode in front of the server; its URL for a database. */
  startPgbouncer: () => Promise<{ url: (database: string) => string; stop: () => Promise<void> }>;
  stop: () => Promise<void>;
};

/**
 * Debian's PostgreSQL server on a data directory of its own (initdb, TCP on 127.0.0.1 with a
 * scram password, as a deployment would use it), run as a non-root user; not the cluster the
 * package sets up, which this leaves alone.
 */
export async function startDebianPostgres(bin: string): Promise<ExternalPostgres> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), "slipway-debian-pg-"));
  await fs.promises.chmod(dir, 0o755);
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  const passwordFile = path.join(dir, "password");
  await fs.promises.writeFile(passwordFile, `${password}\n`, { mode: 0o644 });
  const dataDir = path.join(dir, "data");
  if (process.getuid?.() === 0) await run("chown", ["postgres:postgres", dir]);
  const [initdb, initdbArgs] = asServiceUser(path.join(bin, "initdb"), [
    "-D",
    dataDir,
    "-U",
    "slipway",
    "--auth=scram-sha-256",
    `--pwfile=${passwordFile}`,
    "--encoding=UTF8",
    "--no-sync",
  ]);
  await run(initdb, initdbArgs);
  const port = await testPort();
  const server = startServer(path.join(bin, "postgres"), [
    "-D",
    dataDir,
    "-p",
    String(port),
    "-k",
    dir,
    "-c",
    "listen_addresses=127.0.0.1",
    "-c",
    "fsync=off",
    "-c",
    "max_connections=200",
  ]);
  const url = (database: string) => `postgres://slipway:${password}@127.0.0.1:${port}/${database}`;
  await eventually(
    async () => {
      const client = new pg.Client({ connectionString: url("postgres") });
      await client.connect();
      await client.end();
      return true;
    },
    30_000,
    `Debian's PostgreSQL to accept connections\n${server.output()}`,
  );

  const pgbouncers: Array<{ stop: () => Promise<void> }> = [];
  return {
    url,
    async createDatabase(name) {
      const admin = new pg.Client({ connectionString: url("postgres") });
      await admin.connect();
      await admin.query(`create database ${pg.escapeIdentifier(name)}`);
      await admin.end();
      return url(name);
    },
    async startPgbouncer() {
      const bouncerPort = await testPort();
      const config = path.join(dir, `pgbouncer-${bouncerPort}.ini`);
      const users = path.join(dir, `pgbouncer-${bouncerPort}.users`);
      await fs.promises.writeFile(users, `"slipway" "${password}"\n`, { mode: 0o644 });
      await fs.promises.writeFile(
        config,
        [
          "[databases]",
          `* = host=127.0.0.1 port=${port}`,
          "[pgbouncer]",
          "listen_addr = 127.0.0.1",
          `listen_port = ${bouncerPort}`,
          "unix_socket_dir =",
          "auth_type = scram-sha-256",
          `auth_file = ${users}`,
          // Session mode: a client keeps its server connection for as long as it is connected,
          // which LISTEN/NOTIFY (socket.io's adapter, graphile-worker) and advisory locks need.
          "pool_mode = session",
          "max_client_conn = 500",
          "default_pool_size = 100",
          "",
        ].join("\n"),
        { mode: 0o644 },
      );
      const bouncer = startServer(pgbouncerBin()!, [config]);
      pgbouncers.push(bouncer);
      const bouncerUrl = (database: string) => `postgres://slipway:${password}@127.0.0.1:${bouncerPort}/${database}`;
      await eventually(
        async () => {
          const client = new pg.Client({ connectionString: bouncerUrl("postgres") });
          await client.connect();
          await client.end();
          return true;
        },
        15_000,
        `PgBouncer to accept connections\n${bouncer.output()}`,
      );
      return { url: bouncerUrl, stop: bouncer.stop };
    },
    async stop() {
      await Promise.all(pgbouncers.map((bouncer) => bouncer.stop()));
      await server.stop();
      await fs.promises.rm(dir, { recursive: true, force: true });
    },
  };
}
