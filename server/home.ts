import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { AppError } from "./errors";
import { generateKey, parseKey } from "./secrets/envelope";

/**
 * The data directory of an installation (SLIPWAY_HOME, `./.slipway` by default). Everything
 * `npm start` needs to come back with the same data lives here, so the next start keeps it all:
 *
 * ```
 * <home>/
 *   master.key      the master key wrapping organizations' data keys (0600)
 *   auth-secret     signs sessions (0600)
 *   postgres.json   the embedded PostgreSQL's port and password (0600)
 *   postgres/       the embedded PostgreSQL's data directory (owned by `postgres` when root)
 *   engine/         the local engine's home (SLIPWAY_ENGINE_HOME); `engine/token` (0600)
 *   logs/           logs of processes that are too chatty for the terminal (PostgreSQL)
 *   ssh/known_hosts host keys of repositories checked with a deploy key (server/git/check-repository.ts)
 * ```
 */
export type SlipwayHome = {
  root: string;
  masterKeyFile: string;
  authSecretFile: string;
  postgresSettingsFile: string;
  postgresDataDir: string;
  engineHome: string;
  engineTokenFile: string;
  logsDir: string;
  sshKnownHostsFile: string;
};

export function homeLayout(root: string): SlipwayHome {
  const absolute = path.resolve(root);
  return {
    root: absolute,
    masterKeyFile: path.join(absolute, "master.key"),
    authSecretFile: path.join(absolute, "auth-secret"),
    postgresSettingsFile: path.join(absolute, "postgres.json"),
    postgresDataDir: path.join(absolute, "postgres"),
    engineHome: path.join(absolute, "engine"),
    engineTokenFile: path.join(absolute, "engine", "token"),
    logsDir: path.join(absolute, "logs"),
    sshKnownHostsFile: path.join(absolute, "ssh", "known_hosts"),
  };
}

/**
 * Creates the home and its folders. The home is 0755 rather than private because, as root,
 * embedded PostgreSQL runs as the `postgres` OS user, which must traverse it to reach its data
 * directory; the secrets inside are protected file by file (0600).
 */
export async function prepareHome(root: string): Promise<SlipwayHome> {
  const home = homeLayout(root);
  await fs.mkdir(home.root, { recursive: true });
  await fs.chmod(home.root, 0o755);
  await fs.mkdir(home.engineHome, { recursive: true });
  await fs.mkdir(home.logsDir, { recursive: true });
  return home;
}

/**
 * The first ancestor of `dir` (itself included) that other users cannot traverse, if any. As
 * root, the embedded PostgreSQL runs as `postgres` and fails with an opaque error when it cannot
 * reach its data directory or binaries (a checkout under /root, which is 0700, for example).
 */
export async function findUntraversableAncestor(dir: string): Promise<string | null> {
  let current = path.resolve(dir);
  for (;;) {
    const stat = await fs.stat(current).catch(() => null);
    if (stat && (stat.mode & 0o001) === 0) return current;
    const parent = path.dirname(current);
    if (parent === current) return null;
    current = parent;
  }
}

export type MasterKey = { key: Buffer; encoded: string; source: "env" | "file" | "created" };

/** The master key: SLIPWAY_MASTER_KEY when set, else the key file, created once (32 random bytes). */
export async function loadOrCreateMasterKey(home: SlipwayHome, fromEnv: string | undefined): Promise<MasterKey> {
  if (fromEnv) {
    return { key: parseKey(fromEnv), encoded: fromEnv.trim(), source: "env" };
  }
  const { value, created } = await readOrCreateSecretFile(home.masterKeyFile, () => generateKey().toString("base64"));
  try {
    return { key: parseKey(value), encoded: value, source: created ? "created" : "file" };
  } catch (error) {
    throw new AppError("INVALID", `${home.masterKeyFile} does not hold a valid master key (32 bytes, base64)`, { cause: error });
  }
}

export type AuthSecret = { secret: string; source: "env" | "file" | "created" };

/** AUTH_SECRET when set, else the auth-secret file, created once. */
export async function loadOrCreateAuthSecret(home: SlipwayHome, fromEnv: string | undefined): Promise<AuthSecret> {
  if (fromEnv) return { secret: fromEnv, source: "env" };
  const { value, created } = await readOrCreateSecretFile(home.authSecretFile, () => randomBytes(32).toString("base64url"));
  if (value.length < 16) throw new AppError("INVALID", `${home.authSecretFile} is too short to be an auth secret`);
  return { secret: value, source: created ? "created" : "file" };
}

const postgresSettings = z.object({ port: z.number().int().min(1).max(65535), password: z.string().min(16) });
export type PostgresSettings = z.infer<typeof postgresSettings>;

/**
 * The embedded PostgreSQL's port and password. The password is generated once; the port is
 * kept stable across starts (so `psql` recipes keep working) unless it has been taken since, in
 * which case `choosePort(previous)` picks another and the file is updated.
 */
export async function loadOrCreatePostgresSettings(
  home: SlipwayHome,
  choosePort: (preferred: number) => Promise<number>,
  defaultPort = 5433,
): Promise<PostgresSettings & { portChanged: boolean }> {
  const existing = await readFileIfExists(home.postgresSettingsFile);
  let settings: PostgresSettings;
  if (existing === null) {
    settings = { port: await choosePort(defaultPort), password: randomBytes(24).toString("base64url") };
  } else {
    const parsed = postgresSettings.safeParse(parseJson(existing));
    if (!parsed.success) throw new AppError("INVALID", `${home.postgresSettingsFile} is not valid; remove it only together with ${home.postgresDataDir}`);
    settings = parsed.data;
  }
  const port = existing === null ? settings.port : await choosePort(settings.port);
  const portChanged = existing !== null && port !== settings.port;
  if (existing === null || portChanged) {
    settings = { ...settings, port };
    await writeSecretFile(home.postgresSettingsFile, `${JSON.stringify(settings, null, 2)}\n`);
  }
  return { ...settings, portChanged };
}

/**
 * Writes a file only its owner can read, atomically (write then rename), so a reader never
 * sees half a secret and a crash never leaves an empty one.
 */
export async function writeSecretFile(file: string, contents: string): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    await fs.writeFile(temporary, contents, { mode: 0o600 });
    await fs.rename(temporary, file);
  } catch (error) {
    await fs.rm(temporary, { force: true });
    throw error;
  }
}

/** Reads a file's trimmed contents, or null when it does not exist. */
export async function readFileIfExists(file: string): Promise<string | null> {
  try {
    return (await fs.readFile(file, "utf8")).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}

/**
 * Reads a secret file, creating it with `generate()` when missing. Creation is exclusive
 * (`wx`): two processes booting at once end up with the same secret instead of one silently
 * replacing the other's (for the master key that would make every secret unreadable).
 */
async function readOrCreateSecretFile(file: string, generate: () => string): Promise<{ value: string; created: boolean }> {
  const existing = await readFileIfExists(file);
  if (existing !== null) {
    await tightenMode(file);
    return { value: existing, created: false };
  }
  const value = generate();
  // `npm run web` alone may be the first process to use a home that does not exist yet.
  await fs.mkdir(path.dirname(file), { recursive: true });
  try {
    await fs.writeFile(file, `${value}\n`, { mode: 0o600, flag: "wx" });
    return { value, created: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    return { value: (await readFileIfExists(file)) ?? "", created: false };
  }
}

/** A secret file restored from a backup often comes back 0644: make it private again. */
async function tightenMode(file: string): Promise<void> {
  const stat = await fs.stat(file);
  if ((stat.mode & 0o077) !== 0) await fs.chmod(file, 0o600);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
