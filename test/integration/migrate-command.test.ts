/**
 * `npm run migrate` (server/migrate-main.ts), the first step of a control plane started process
 * by process (deploy/README.md): on an empty database it applies every migration and creates the
 * installation, once; run again (the next upgrade) it changes nothing.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { generateKey } from "../../server/secrets/envelope";
import { withDatabase } from "../../server/db/client";

const run = promisify(execFile);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const name = `slipway_migrate_${randomBytes(4).toString("hex")}`;
const masterKey = generateKey().toString("base64");
let url: string;
let home: string;

beforeAll(async () => {
  const admin = new pg.Client({ connectionString: inject("postgresUrl") });
  await admin.connect();
  // Empty: not a clone of the migrated template.
  await admin.query(`create database ${name}`);
  await admin.end();
  url = withDatabase(inject("postgresUrl"), name);
  home = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-migrate-"));
});

afterAll(async () => {
  const admin = new pg.Client({ connectionString: inject("postgresUrl") });
  await admin.connect();
  await admin.query(`drop database if exists ${name} with (force)`);
  await admin.end();
  await fs.rm(home, { recursive: true, force: true });
});

const migrate = () =>
  run(process.execPath, ["--import", "tsx", path.join(repoRoot, "server", "migrate-main.ts")], {
    cwd: repoRoot,
    env: {
      ...process.env,
      DATABASE_URL: url,
      SLIPWAY_HOME: home,
      SLIPWAY_MASTER_KEY: masterKey,
      SLIPWAY_FIRST_BOOT_FILE: path.join(home, "first-boot.json"),
    },
  });

async function query<T extends pg.QueryResultRow>(text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

describe("npm run migrate", () => {
  it("migrates an empty database and creates the installation once; a second run changes nothing", async () => {
    const first = await migrate();
    expect(first.stdout).toContain("Slipway is installed");
    expect(first.stdout).toContain("The database is migrated and the installation created.");
    const credentials = JSON.parse(await fs.readFile(path.join(home, "first-boot.json"), "utf8")) as { adminEmail: string; adminPassword: string };
    expect(first.stdout).toContain(credentials.adminPassword);
    const migrations = (await fs.readdir(path.join(repoRoot, "drizzle"))).filter((file) => file.endsWith(".sql")).length;
    const counts = async () =>
      (
        await query<{ migrations: number; users: number; organizations: number }>(
          "select (select count(*)::int from drizzle.__drizzle_migrations) as migrations, (select count(*)::int from users) as users, (select count(*)::int from organizations) as organizations",
        )
      )[0];
    expect(await counts()).toEqual({ migrations, users: 1, organizations: 1 });

    const second = await migrate();
    expect(second.stdout).toBe("The database is migrated.\n");
    expect(await counts()).toEqual({ migrations, users: 1, organizations: 1 });
  }, 60_000);
});
