import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import getPort from "get-port";
import pgClient from "pg";
import { connectDatabase, withDatabase } from "../server/db/client";
import { migrateDatabase } from "../server/db/migrate";
import { startEmbeddedPostgresChild } from "../server/process/embedded-postgres";
import { createSupervisor } from "../server/process/supervisor";
import { createMasterKeyring } from "../server/secrets/keyring";
import { generateKey } from "../server/secrets/envelope";
import { seedOrganization, testServices } from "../test/support/seed";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** A control-plane process (web or worker) as `npm start` runs them: its own Node, configured by environment. */
function startProcess(script: string, env: Record<string, string>): { child: ChildProcess; ready: Promise<void>; stop: () => Promise<void> } {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(root, script)], {
    cwd: root,
    env: { ...process.env, ...env, LOG_LEVEL: "warn", NODE_ENV: "production" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("listening")) resolve();
    });
    void exited.then(() => reject(new Error(`${script} exited before it was ready`)));
  });
  // Only the web process says it is ready; a worker's exit at close is not an error.
  ready.catch(() => undefined);
  return {
    child,
    ready,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

/**
 * A fresh embedded PostgreSQL, migrated, with a seeded organization, for benchmarks that start
 * their own control-plane processes on it. This process keeps a pool for the API calls of the benches.
 */
export async function startBenchDatabase() {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-bench-"));
  await fs.chmod(dir, 0o755);
  // Under its host process, as in `npm start`: the package's exit hook must not end this one.
  const supervisor = createSupervisor({ nameWidth: 8 });
  const postgres = await startEmbeddedPostgresChild(supervisor, {
    dataDir: path.join(dir, "pg"),
    port: await getPort(),
    password: "bench",
    logFile: path.join(dir, "postgres.log"),
  });
  const admin = new pgClient.Client({ connectionString: postgres.connectionString });
  await admin.connect();
  await admin.query("create database slipway_bench");
  await admin.end();
  const url = withDatabase(postgres.connectionString, "slipway_bench");
  await migrateDatabase(url);
  const database = connectDatabase(url);
  const masterKey = generateKey();
  const services = testServices(database.db, { keyring: createMasterKeyring(masterKey) });
  const org = await seedOrganization(services, "bench");
  return {
    dir,
    url,
    masterKey,
    services,
    org,
    async close() {
      await database.close();
      await supervisor.stop();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A whole control plane on a fresh embedded PostgreSQL for benchmarks, with the web and worker
 * processes separate as in production (server/start.ts), so the intake's event loop does not
 * share its core with the worker.
 */
export async function startBenchControlPlane() {
  const { dir, url, masterKey, services, org, close } = await startBenchDatabase();
  const webPort = await getPort();
  const env = { DATABASE_URL: url, SLIPWAY_MASTER_KEY: masterKey.toString("base64"), SLIPWAY_HOME: path.join(dir, "home"), PORT: String(webPort) };
  const web = startProcess("bench/web-process.ts", env);
  const worker = startProcess("worker/main.ts", env);
  await web.ready;
  return {
    dir,
    services,
    org,
    /** For benches that watch the database themselves (notifications, row counts). */
    databaseUrl: url,
    /** For benches that count the CPU the processes spend (bench/cpu.ts). */
    webPid: web.child.pid!,
    postgresDataDir: path.join(dir, "pg"),
    webUrl: `http://127.0.0.1:${webPort}`,
    async close() {
      await Promise.all([worker.stop(), web.stop()]);
      await close();
    },
  };
}
