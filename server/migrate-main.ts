import { bootstrapInstallation } from "./bootstrap";
import { connectDatabase } from "./db/client";
import { migrateDatabase } from "./db/migrate";
import { loadEnv } from "./env";
import { loadOrCreateMasterKey, prepareHome, writeSecretFile } from "./home";
import { formatCredentials } from "./process/banner";
import { createMasterKeyring } from "./secrets/keyring";

/**
 * `npm run migrate`: what `npm start` does to the database before it starts anything, for a
 * control plane whose web and worker processes are started on their own (deploy/README.md):
 * applies the pending migrations, and on the very first run creates the installation (the first
 * admin and API token, printed once, and the `local` cluster). Run it once per upgrade, before
 * the new release's processes; running it again changes nothing.
 */
async function main() {
  const env = loadEnv();
  if (!env.DATABASE_URL) throw new Error("npm run migrate needs DATABASE_URL (npm start migrates its embedded PostgreSQL itself)");
  const home = await prepareHome(env.home);
  const masterKey = await loadOrCreateMasterKey(home, env.SLIPWAY_MASTER_KEY);
  if (masterKey.source === "created") {
    process.stdout.write(`Created the master key ${home.masterKeyFile}: give every web and worker process this key (SLIPWAY_MASTER_KEY), and back it up.\n`);
  }
  await migrateDatabase(env.DATABASE_URL);
  const database = connectDatabase(env.DATABASE_URL, { max: 2 });
  try {
    const installation = await bootstrapInstallation(database.db, createMasterKeyring(masterKey.key), {
      engineTokenFile: home.engineTokenFile,
      domainSuffix: env.SLIPWAY_DOMAIN,
    });
    if (installation.firstBoot) {
      process.stdout.write(`${formatCredentials({ ...installation.firstBoot, cliConfigPath: null })}\n`);
      if (env.SLIPWAY_FIRST_BOOT_FILE) await writeSecretFile(env.SLIPWAY_FIRST_BOOT_FILE, `${JSON.stringify(installation.firstBoot, null, 2)}\n`);
    }
    process.stdout.write(`The database is migrated${installation.firstBoot ? " and the installation created" : ""}.\n`);
  } finally {
    await database.close();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
