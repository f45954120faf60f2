import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import getPort from "get-port";
import { bootstrapInstallation, type BootstrapResult } from "./bootstrap";
import { connectDatabase } from "./db/client";
import { migrateDatabase } from "./db/migrate";
import { loadEnv, type Env } from "./env";
import { AppError, isAppError } from "./errors";
import {
  findUntraversableAncestor,
  loadOrCreateAuthSecret,
  loadOrCreateMasterKey,
  loadOrCreatePostgresSettings,
  prepareHome,
  writeSecretFile,
  type SlipwayHome,
} from "./home";
import type { LocalEngineReport } from "../engine/protocol/local-engine";
import { formatCredentials, formatReady, formatStopped } from "./process/banner";
import { startEmbeddedPostgresChild } from "./process/embedded-postgres";
import { localEngineKeeper, localEngineStopper } from "./process/local-engine";
import { createPaint } from "./process/prefix-lines";
import { isReadyMessage } from "./process/readiness";
import { createSupervisor, type SupervisedChild, type Supervisor } from "./process/supervisor";
import { createMasterKeyring } from "./secrets/keyring";

/**
 * `npm start`: the whole platform in one command. Starts (or reuses) the data directory and the
 * embedded PostgreSQL, migrates, bootstraps a fresh installation, builds the web UI once, then
 * supervises web, worker and the local engine's keeper until Ctrl-C. The order matters both
 * ways: the engine connects to web, so it starts last and its keeper stops first; PostgreSQL
 * stops after everything that uses it. The local engine itself runs detached and outlives
 * Ctrl-C, so cron jobs keep their schedule (issue 12); `npm start -- --stop-engine` stops it.
 */

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
// Read once here and validated by loadEnv; the children inherit the environment as it is.
const processEnv = process.env;
const colors = process.stdout.isTTY === true && process.stdout.hasColors();
const paint = createPaint(colors);
const supervisor = createSupervisor({ colors, nameWidth: 8 });
const say = (message: string) => supervisor.print("slipway", message);

let exitCode = 0;
let controlPlaneStarted = false;
let embeddedPostgres = false;
// The detached engine serving the local cluster, as its keeper reported it.
let localEngine: LocalEngineReport | null = null;
// The first boot's credentials are printed once the platform is up, where they stay visible;
// if the start fails before that, on the way out, since they cannot be shown again.
let pendingCredentials: string | null = null;

function printPendingCredentials() {
  if (pendingCredentials === null) return;
  process.stdout.write(`\n${pendingCredentials}\n`);
  pendingCredentials = null;
}

async function boot(env: Env): Promise<void> {
  if (env.PORT === 0) throw new AppError("INVALID", "npm start needs a fixed PORT (the engine and the CLI connect to it)");
  const home = await prepareHome(env.home);
  const masterKey = await loadOrCreateMasterKey(home, env.SLIPWAY_MASTER_KEY);
  const authSecret = await loadOrCreateAuthSecret(home, env.AUTH_SECRET);
  if (masterKey.source === "created") say(`created the master key ${home.masterKeyFile} (back it up: secrets cannot be read without it)`);

  // Without the dashboard (SLIPWAY_WEB_UI=0) web serves no pages, and no build is needed.
  if (env.SLIPWAY_WEB_UI === "1") await buildWebIfNeeded();
  embeddedPostgres = env.DATABASE_URL === undefined;
  const databaseUrl = env.DATABASE_URL ?? (await startDatabase(home));

  say("migrating the database");
  await migrateDatabase(databaseUrl);
  const installation = await bootstrap(databaseUrl, home, env, createMasterKeyring(masterKey.key));

  const shared: NodeJS.ProcessEnv = {
    ...processEnv,
    // `npm start` serves the production build made above.
    NODE_ENV: processEnv.NODE_ENV ?? "production",
    SLIPWAY_LOG_PRETTY: processEnv.SLIPWAY_LOG_PRETTY ?? (colors ? "1" : "0"),
  };
  const controlPlane = {
    ...shared,
    DATABASE_URL: databaseUrl,
    SLIPWAY_HOME: home.root,
    AUTH_SECRET: authSecret.secret,
    SLIPWAY_MASTER_KEY: masterKey.encoded,
    // One host: the local engine clones the local repositories services name, and the control plane may read them too.
    SLIPWAY_READ_LOCAL_REPOSITORIES: processEnv.SLIPWAY_READ_LOCAL_REPOSITORIES ?? "1",
  };
  controlPlaneStarted = true;
  startTsChild("web", "server/web.ts", controlPlane);
  startTsChild("worker", "worker/main.ts", controlPlane);

  const localUrl = `http://${loopbackHost(env.HOST)}:${env.PORT}`;
  await waitForHealth(`${localUrl}/api/health`);

  // The engine is a separate trust domain (DESIGN.md, security model): it talks to the API with
  // its cluster's token and must not hold the database URL or the master key, which the apps it
  // starts could otherwise inherit.
  const engineEnv: NodeJS.ProcessEnv = {
    ...shared,
    SLIPWAY_ENGINE_URL: localUrl,
    SLIPWAY_ENGINE_TOKEN: installation.engineToken,
    SLIPWAY_ENGINE_HOME: home.engineHome,
    SLIPWAY_ROUTER_PORT: String(env.SLIPWAY_ROUTER_PORT),
    SLIPWAY_ROUTER_HTTPS_PORT: String(env.SLIPWAY_ROUTER_HTTPS_PORT),
    // The quick start's single-user machine: the embedded engine clones repositories on this
    // host, as the `local` cluster bootstrap created allows (server/bootstrap.ts).
    SLIPWAY_ENGINE_ALLOW_LOCAL_REPOSITORIES: "1",
  };
  for (const secret of ["DATABASE_URL", "SLIPWAY_MASTER_KEY", "AUTH_SECRET"]) delete engineEnv[secret];
  supervisor.start(
    localEngineKeeper({ repoRoot, nodeArgs: tsNodeArgs, env: engineEnv }, (report) => {
      localEngine = report;
    }),
  );

  process.stdout.write(
    formatReady(paint, {
      dashboardUrl: env.publicUrl,
      routerPattern: `http://<service>-<env>-<project>.${env.SLIPWAY_DOMAIN}:${env.SLIPWAY_ROUTER_PORT}`,
    }),
  );
  printPendingCredentials();
}

// What the production build is made from: a change here (a `git pull`) calls for a new build.
const webSources = ["app", "components", "next.config.js", "package-lock.json"];

/**
 * Next serves pages from a production build: make one on the first start (about 10 s), and
 * again when the web UI's sources are newer than the build.
 */
async function buildWebIfNeeded(): Promise<void> {
  const builtAt = await fs.stat(path.join(repoRoot, ".next", "BUILD_ID")).then(
    (stat) => stat.mtimeMs,
    () => null,
  );
  if (builtAt !== null && (await newestModification(webSources.map((source) => path.join(repoRoot, source)))) <= builtAt) return;
  say(builtAt === null ? "no production build of the web UI yet: running next build" : "the web UI changed since its last build: running next build");
  const exit = await supervisor.run({
    name: "build",
    // node + the script rather than node_modules/.bin/next: its `#!/usr/bin/env node` would pick
    // whichever node is first on PATH, not the one running Slipway.
    command: process.execPath,
    args: [path.join(repoRoot, "node_modules", "next", "dist", "bin", "next"), "build"],
    cwd: repoRoot,
    env: { ...processEnv, NODE_ENV: "production", NEXT_TELEMETRY_DISABLED: processEnv.NEXT_TELEMETRY_DISABLED ?? "1" },
  });
  if (exit.code !== 0) throw new AppError("UNAVAILABLE", "next build failed (its output is above); fix it and run npm start again");
}

async function newestModification(paths: string[]): Promise<number> {
  let newest = 0;
  for (const entry of paths) {
    const stat = await fs.stat(entry).catch(() => null);
    if (!stat) continue;
    newest = Math.max(newest, stat.mtimeMs);
    if (!stat.isDirectory()) continue;
    for (const name of await fs.readdir(entry, { recursive: true })) {
      const inner = await fs.stat(path.join(entry, name)).catch(() => null);
      if (inner) newest = Math.max(newest, inner.mtimeMs);
    }
  }
  return newest;
}

async function startDatabase(home: SlipwayHome): Promise<string> {
  if (process.getuid?.() === 0) {
    // As root, PostgreSQL runs as the `postgres` user, which must reach its data and binaries.
    for (const needed of [home.root, path.join(repoRoot, "node_modules")]) {
      const blocked = await findUntraversableAncestor(needed);
      if (blocked) {
        throw new AppError(
          "INVALID",
          `The embedded PostgreSQL runs as the "postgres" user, which cannot enter ${blocked} (needed for ${needed}). ` +
            `Run Slipway from a directory others can traverse (chmod o+x ${blocked}), or set DATABASE_URL to an existing PostgreSQL.`,
        );
      }
    }
  }
  const settings = await loadOrCreatePostgresSettings(home, (preferred) => getPort({ port: preferred, host: "127.0.0.1" }));
  if (settings.portChanged) say(`port of the embedded PostgreSQL was taken; now using ${settings.port}`);
  const { connectionString } = await startEmbeddedPostgresChild(supervisor, {
    dataDir: home.postgresDataDir,
    port: settings.port,
    password: settings.password,
    logFile: path.join(home.logsDir, "postgres.log"),
  });
  say(`PostgreSQL is up on 127.0.0.1:${settings.port} (data in ${home.postgresDataDir}, log in ${home.logsDir})`);
  return connectionString;
}

async function bootstrap(databaseUrl: string, home: SlipwayHome, env: Env, keyring: ReturnType<typeof createMasterKeyring>): Promise<BootstrapResult> {
  const database = connectDatabase(databaseUrl, { max: 2 });
  let installation: BootstrapResult;
  try {
    installation = await bootstrapInstallation(database.db, keyring, { engineTokenFile: home.engineTokenFile, domainSuffix: env.SLIPWAY_DOMAIN });
  } finally {
    await database.close();
  }
  if (installation.engineTokenIssued && installation.engineTokenIssued !== "first-boot") {
    say(`issued a new token for the local engine (${installation.engineTokenIssued})`);
  }
  if (installation.firstBoot) {
    const cliConfigPath = await writeCliConfig(env.SLIPWAY_CONFIG, env.publicUrl, installation.firstBoot.apiToken);
    pendingCredentials = formatCredentials({ ...installation.firstBoot, cliConfigPath });
    if (env.SLIPWAY_FIRST_BOOT_FILE) await writeSecretFile(env.SLIPWAY_FIRST_BOOT_FILE, `${JSON.stringify(installation.firstBoot, null, 2)}\n`);
  }
  return installation;
}

/**
 * Logs the CLI in on the first boot, so `npx slipway …` works right away. A failure here is
 * reported, not fatal: the token is printed with the credentials.
 */
async function writeCliConfig(configured: string | undefined, url: string, token: string): Promise<string | null> {
  const file = configured ?? path.join(os.homedir(), ".config", "slipway", "config.json");
  try {
    await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    await writeSecretFile(file, `${JSON.stringify({ url, token }, null, 2)}\n`);
    return file;
  } catch (error) {
    say(paint.red(`could not write the CLI config ${file}: ${(error as Error).message}`));
    return null;
  }
}

const exitWithParent = pathToFileURL(path.join(repoRoot, "server", "process", "exit-with-parent.ts")).href;
// tsx's loader by absolute URL: a bare "tsx" would be resolved from the child's working
// directory, and a TypeScript preload only loads once tsx's hooks are in place.
const tsxLoader = import.meta.resolve("tsx");

const tsNodeArgs = ["--import", tsxLoader, "--import", exitWithParent];

function startTsChild(name: string, file: string, env: NodeJS.ProcessEnv): SupervisedChild {
  return supervisor.start({
    name,
    command: process.execPath,
    args: [...tsNodeArgs, path.join(repoRoot, file)],
    cwd: repoRoot,
    env,
    ipc: true,
    readyWhen: isReadyMessage,
  });
}

async function waitForHealth(url: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    // A web process that crashes while it starts is restarted; only a supervisor that gave up ends the wait.
    if (supervisor.stopping) throw new AppError("UNAVAILABLE", "web stopped before it answered its health check");
    const healthy = await fetch(url, { signal: AbortSignal.timeout(2_000) }).then(
      (response) => response.ok,
      () => false,
    );
    if (healthy) return;
    await sleep(200);
  }
  throw new AppError("UNAVAILABLE", `web did not answer ${url} within ${timeoutMs / 1000} s`);
}

/** Where local processes reach the web server: a wildcard bind address is not one to dial. */
function loopbackHost(host: string): string {
  if (host === "0.0.0.0" || host === "" || host === "::") return "127.0.0.1";
  return host.includes(":") ? `[${host}]` : host;
}

function loadConfiguration(): Env {
  try {
    return loadEnv(processEnv);
  } catch (error) {
    // The message lists every invalid variable; a stack trace would only bury it.
    throw new AppError("INVALID", (error as Error).message, { cause: error });
  }
}

function report(error: unknown): void {
  const message = isAppError(error) ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.stderr.write(`\n${paint.red("✗")} ${message}\n\n`);
}

function handleSignals(supervisor: Supervisor): void {
  let firstSignalAt: number | null = null;
  const onSignal = () => {
    const now = Date.now();
    if (firstSignalAt === null) {
      firstSignalAt = now;
      process.stdout.write(`\n${paint.bold("Stopping Slipway")}; press Ctrl-C again to force.\n`);
      void supervisor.stop();
      return;
    }
    // One Ctrl-C arrives several times within milliseconds: from the terminal, and relayed by
    // npm and tsx. Only a later one is the user asking again.
    if (now - firstSignalAt < 1_000) return;
    process.stdout.write(paint.red("Forced stop.\n"));
    supervisor.kill();
    process.exit(130);
  };
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, onSignal);
  // Whatever ends this process, children must not outlive it (the PostgreSQL host stops its
  // server when it gets this signal or loses its IPC channel).
  process.on("exit", () => supervisor.kill());
}

handleSignals(supervisor);
void supervisor.stopped.then((outcome) => {
  printPendingCredentials();
  process.stdout.write(formatStopped(paint, { controlPlaneStarted, embeddedPostgres, engine: localEngine }));
  process.exit(outcome.unexpectedExit ? 1 : exitCode);
});

/** `npm start -- --stop-engine`: stops the local engine that Ctrl-C leaves running, and nothing else. */
async function stopLocalEngine(env: Env): Promise<void> {
  const home = await prepareHome(env.home);
  const exit = await supervisor.run(localEngineStopper({ repoRoot, nodeArgs: ["--import", tsxLoader], env: processEnv, engineHome: home.engineHome }));
  process.exit(exit.code ?? 1);
}

try {
  const env = loadConfiguration();
  if (process.argv.includes("--stop-engine")) await stopLocalEngine(env);
  else await boot(env);
} catch (error) {
  // A stop that was asked for interrupts the boot; its errors are expected.
  if (!supervisor.stopping) {
    report(error);
    exitCode = 1;
    await supervisor.stop();
  }
}
