import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../test/database";
import { verifyPassword } from "./auth/passwords";
import { hashToken } from "./auth/tokens";
import { bootstrapInstallation, type BootstrapOptions, type BootstrapResult } from "./bootstrap";
import { apiTokens, auditEvents, clusters, memberships, organizations, users } from "./db/schema";
import { createMasterKeyring } from "./secrets/keyring";
import { generateKey } from "./secrets/envelope";

const keyring = createMasterKeyring(generateKey());
let database: TestDatabase;
let directory: string;
let options: BootstrapOptions;

beforeAll(async () => {
  database = await createTestDatabase();
  directory = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-bootstrap-"));
  options = { engineTokenFile: path.join(directory, "engine", "token"), domainSuffix: "apps.example.test" };
});
afterAll(async () => {
  await fs.rm(directory, { recursive: true, force: true });
});

async function rowCounts(db: TestDatabase["db"]) {
  const count = async (table: typeof organizations | typeof users | typeof memberships | typeof apiTokens | typeof clusters) =>
    (await db.select({ n: sql<number>`count(*)::int` }).from(table))[0]!.n;
  return {
    organizations: await count(organizations),
    users: await count(users),
    memberships: await count(memberships),
    apiTokens: await count(apiTokens),
    clusters: await count(clusters),
  };
}

/** Every row of every table in the public schema, as text: what a database dump would reveal. */
async function dumpAllTables(db: TestDatabase["db"]): Promise<string> {
  const tables = await db.execute<{ table_name: string }>(
    sql`select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'`,
  );
  const parts: string[] = [];
  for (const { table_name } of tables.rows) {
    const rows = await db.execute(sql`select row_to_json(t)::text as row from ${sql.identifier(table_name)} t`);
    parts.push(...rows.rows.map((row) => String(row.row)));
  }
  return parts.join("\n");
}

describe("bootstrapInstallation", () => {
  let first: BootstrapResult;

  it("creates the organization, an admin who owns it, an API token and the local cluster on first boot", async () => {
    first = await bootstrapInstallation(database.db, keyring, options);
    expect(first.firstBoot).not.toBeNull();
    expect(first.engineTokenIssued).toBe("first-boot");
    const credentials = first.firstBoot!;

    const [organization] = await database.db.select().from(organizations);
    expect(organization).toMatchObject({ id: first.organizationId, name: "default" });

    const [admin] = await database.db.select().from(users);
    expect(admin!.email).toBe("admin@slipway.local");
    // The first admin is the instance admin: they choose whether anyone may sign up (server/instance/settings.ts).
    expect(admin!.instanceAdmin).toBe(true);
    expect(credentials.adminEmail).toBe("admin@slipway.local");
    expect(await verifyPassword(credentials.adminPassword, admin!.passwordHash!)).toBe(true);
    expect(await verifyPassword(`${credentials.adminPassword}x`, admin!.passwordHash!)).toBe(false);

    const [membership] = await database.db.select().from(memberships);
    expect(membership).toMatchObject({ organizationId: first.organizationId, userId: admin!.id, role: "OWNER" });

    const [token] = await database.db.select().from(apiTokens);
    expect(token).toMatchObject({ organizationId: first.organizationId, role: "OWNER", tokenHash: hashToken(credentials.apiToken) });
    expect(credentials.apiToken.startsWith(token!.prefix)).toBe(true);

    const [cluster] = await database.db.select().from(clusters);
    expect(cluster).toMatchObject({
      id: first.localClusterId,
      organizationId: first.organizationId,
      name: "local",
      kind: "local",
      domainSuffix: "apps.example.test",
      engineTokenHash: hashToken(first.engineToken),
      allowLocalRepositories: true,
    });
    // Allowing local repositories is a decision on the record, as Slipway's own.
    const audit = await database.db.select().from(auditEvents).where(eq(auditEvents.targetId, first.localClusterId));
    expect(audit).toEqual([
      expect.objectContaining({
        actorType: "system",
        actorLabel: "bootstrap (npm start)",
        origin: "SYSTEM",
        action: "cluster.create",
        changes: { name: "local", kind: "local", domainSuffix: "apps.example.test", allowLocalRepositories: true },
      }),
    ]);
  });

  it("keeps the engine token in a file only its owner can read", async () => {
    expect((await fs.readFile(options.engineTokenFile, "utf8")).trim()).toBe(first.engineToken);
    expect((await fs.stat(options.engineTokenFile)).mode & 0o777).toBe(0o600);
  });

  it("stores no plaintext password or token in any table", async () => {
    const dump = await dumpAllTables(database.db);
    expect(dump).toContain(hashToken(first.firstBoot!.apiToken));
    expect(dump).not.toContain(first.firstBoot!.adminPassword);
    expect(dump).not.toContain(first.firstBoot!.apiToken);
    expect(dump).not.toContain(first.engineToken);
  });

  it("creates nothing on a later boot and hands back the same engine token", async () => {
    const before = await rowCounts(database.db);
    const second = await bootstrapInstallation(database.db, keyring, options);
    expect(second).toEqual({
      organizationId: first.organizationId,
      localClusterId: first.localClusterId,
      engineToken: first.engineToken,
      engineTokenIssued: null,
      firstBoot: null,
    });
    expect(await rowCounts(database.db)).toEqual(before);
  });

  it("issues a new engine token when the token file is missing", async () => {
    await fs.rm(options.engineTokenFile);
    const rotated = await bootstrapInstallation(database.db, keyring, options);
    expect(rotated.engineTokenIssued).toBe("token-file-missing");
    expect(rotated.firstBoot).toBeNull();
    expect(rotated.engineToken).not.toBe(first.engineToken);
    expect((await fs.readFile(options.engineTokenFile, "utf8")).trim()).toBe(rotated.engineToken);
    const [cluster] = await database.db.select().from(clusters).where(eq(clusters.id, first.localClusterId));
    expect(cluster!.engineTokenHash).toBe(hashToken(rotated.engineToken));
    expect(await rowCounts(database.db)).toEqual({ organizations: 1, users: 1, memberships: 1, apiTokens: 1, clusters: 1 });

    const after = await bootstrapInstallation(database.db, keyring, options);
    expect(after.engineToken).toBe(rotated.engineToken);
    expect(after.engineTokenIssued).toBeNull();
  });

  it("issues a new engine token when the file no longer matches the cluster", async () => {
    await fs.writeFile(options.engineTokenFile, "swe_from-another-installation\n", { mode: 0o600 });
    const rotated = await bootstrapInstallation(database.db, keyring, options);
    expect(rotated.engineTokenIssued).toBe("token-file-stale");
    const [cluster] = await database.db.select().from(clusters).where(eq(clusters.id, first.localClusterId));
    expect(cluster!.engineTokenHash).toBe(hashToken(rotated.engineToken));
    expect((await fs.readFile(options.engineTokenFile, "utf8")).trim()).toBe(rotated.engineToken);
  });
});

describe("bootstrapInstallation on a fresh database", () => {
  let fresh: TestDatabase;
  beforeAll(async () => {
    fresh = await createTestDatabase();
  });

  it("creates one installation when two boots race", async () => {
    const racing = { ...options, engineTokenFile: path.join(directory, "racing", "token"), organizationName: "acme" };
    const results = await Promise.all([bootstrapInstallation(fresh.db, keyring, racing), bootstrapInstallation(fresh.db, keyring, racing)]);
    expect(results.filter((result) => result.firstBoot !== null)).toHaveLength(1);
    expect(await rowCounts(fresh.db)).toEqual({ organizations: 1, users: 1, memberships: 1, apiTokens: 1, clusters: 1 });
    const [organization] = await fresh.db.select().from(organizations);
    expect(organization!.name).toBe("acme");
    const [cluster] = await fresh.db.select().from(clusters);
    const onDisk = (await fs.readFile(racing.engineTokenFile, "utf8")).trim();
    expect(cluster!.engineTokenHash).toBe(hashToken(onDisk));
  });
});
