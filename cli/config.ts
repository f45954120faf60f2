import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { CliError, exitCodes } from "./errors";

/**
 * Where the CLI finds its control plane: `$SLIPWAY_CONFIG` or `~/.config/slipway/config.json`
 * (written by `slipway login`, and by `npm start` on first boot), with `SLIPWAY_URL` and
 * `SLIPWAY_TOKEN` overriding the file so CI jobs need no file at all.
 */
export type CliConfig = { url: string; token: string; organizations?: SavedOrganization[] };
/**
 * An API token belongs to one organization, so the CLI keeps one per organization it was given
 * (`slipway org create` saves the new one's); `slipway org switch` makes one of them `token`.
 */
export type SavedOrganization = { id: string; name: string; token: string };
export type Env = Record<string, string | undefined>;

export function configPath(env: Env): string {
  if (env.SLIPWAY_CONFIG) return env.SLIPWAY_CONFIG;
  return path.join(env.HOME || os.homedir(), ".config", "slipway", "config.json");
}

async function readConfigFile(file: string): Promise<Partial<CliConfig>> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new CliError(`cannot read ${file}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CliError(`${file} is not valid JSON: run slipway login again`);
  }
  if (typeof parsed !== "object" || parsed === null) throw new CliError(`${file} is not a config object: run slipway login again`);
  const { url, token, organizations } = parsed as Record<string, unknown>;
  return {
    url: typeof url === "string" ? url : undefined,
    token: typeof token === "string" ? token : undefined,
    organizations: Array.isArray(organizations) ? organizations.filter(isSavedOrganization) : undefined,
  };
}

function isSavedOrganization(value: unknown): value is SavedOrganization {
  if (typeof value !== "object" || value === null) return false;
  const { id, name, token } = value as Record<string, unknown>;
  return typeof id === "string" && typeof name === "string" && typeof token === "string";
}

/** The config file as saved, for commands that change part of it (`slipway org …`). */
export async function readSavedConfig(env: Env): Promise<Partial<CliConfig>> {
  return readConfigFile(configPath(env));
}

/** The effective config, or a "not logged in" error naming what is missing. */
export async function loadConfig(env: Env): Promise<CliConfig> {
  const file = configPath(env);
  const fromFile = await readConfigFile(file);
  const url = env.SLIPWAY_URL || fromFile.url;
  const token = env.SLIPWAY_TOKEN || fromFile.token;
  if (!url || !token) {
    throw new CliError(
      `not logged in (no ${!url ? "url" : "token"} in ${file} or SLIPWAY_${!url ? "URL" : "TOKEN"}): run slipway login --url <url> --token <token>`,
      exitCodes.denied,
    );
  }
  return { url: normalizeUrl(url), token, ...(fromFile.organizations?.length ? { organizations: fromFile.organizations } : {}) };
}

/** Writes the config readable by its owner only, atomically: a crash never leaves half a token. */
export async function saveConfig(env: Env, config: CliConfig): Promise<string> {
  const file = configPath(env);
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    await fs.writeFile(temporary, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
    await fs.rename(temporary, file);
  } catch (error) {
    await fs.rm(temporary, { force: true });
    throw new CliError(`cannot write ${file}: ${(error as Error).message}`);
  }
  return file;
}

/** `http://host:3000/` and `http://host:3000` name the same control plane. */
export function normalizeUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError(`"${url}" is not a URL (expected e.g. http://localhost:3000)`, exitCodes.usage);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new CliError(`"${url}" is not an http(s) URL`, exitCodes.usage);
  return parsed.href.replace(/\/+$/, "");
}
