import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import getPort from "get-port";
import pino from "pino";
import pgClient from "pg";
import type { Runner } from "graphile-worker";
import type { Services } from "../server/context";
import { connectDatabase } from "../server/db/client";
import { startEmbeddedPostgres } from "../server/db/embedded";
import { migrateDatabase } from "../server/db/migrate";
import { startWebServer } from "../server/web-server";
import { startWorker } from "../worker/runner";
import { seedOrganization, testServices } from "../test/support/seed";

/** A whole control plane on a fresh embedded PostgreSQL, in this process, for benchmarks. */
export async function startBenchControlPlane() {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-bench-"));
  await fs.chmod(dir, 0o755);
  const postgres = await startEmbeddedPostgres({ dataDir: path.join(dir, "pg"), port: await getPort(), password: "bench" });
  const admin = new pgClient.Client({ connectionString: postgres.connectionString });
  await admin.connect();
  await admin.query("create database slipway_bench");
  await admin.end();
  const url = postgres.connectionString.replace(/\/postgres$/, "/slipway_bench");
  await migrateDatabase(url);
  const database = connectDatabase(url);
  const services: Services = testServices(database.db);
  const logger = pino({ level: "silent" });
  const org = await seedOrganization(services, "bench");
  const webPort = await getPort();
  const web = await startWebServer({ services, databaseUrl: url, logger, port: webPort, host: "127.0.0.1" });
  const worker: Runner = await startWorker({ services, connectionString: url, logger });
  return {
    dir,
    services,
    org,
    webUrl: `http://127.0.0.1:${webPort}`,
    async close() {
      await worker.stop();
      await web.close();
      await database.close();
      await postgres.stop();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
