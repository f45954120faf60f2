import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import getPort from "get-port";
import { createClient } from "redis";
import { StepError } from "../../runtime";
import { handOver } from "../database-user";
import { engineBaseEnv } from "../../shared/processes-env";
import type { DatabaseDriver, PrepareInput, SourceDatabase } from "./driver";

/** redis-server on the engine's PATH, if the host has it (Debian: the redis-server package). */
function binary(): string | null {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    const candidate = path.join(dir || ".", "redis-server");
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return null;
}

/** A client of a Redis server on 127.0.0.1; callers close it. */
async function connect(port: number, password: string) {
  const client = createClient({ socket: { host: "127.0.0.1", port, connectTimeout: 2_000, reconnectStrategy: false }, password });
  client.on("error", () => undefined);
  await client.connect();
  return client;
}

/**
 * Redis: one server per service, its append-only files and snapshots in the service's `data`
 * directory, its configuration (password included) in a 0600 file under `run`, so the
 * password never shows in a process listing.
 */
export const redis: DatabaseDriver = {
  engine: "redis",

  async available() {
    return binary() !== null;
  },

  async program() {
    return binary();
  },

  async prepare({ dataDir, runDir, connection, copyFrom, user, output }: PrepareInput) {
    const server = binary();
    if (!server) throw new StepError("redis-server is not installed on the engine's host");
    await fsp.mkdir(runDir, { recursive: true, mode: 0o700 });
    const fresh = !fs.existsSync(dataDir);
    await fsp.mkdir(dataDir, { recursive: true, mode: 0o700 });
    if (fresh && copyFrom) {
      output("system", `Copying the data of ${copyFrom.name} into this database`);
      await copyData(server, copyFrom, dataDir, user);
    }
    const config = [
      "bind 127.0.0.1",
      `port ${connection.port}`,
      `dir ${dataDir}`,
      "appendonly yes",
      "protected-mode yes",
      "daemonize no",
      `requirepass ${connection.password}`,
      "",
    ].join("\n");
    const configFile = path.join(runDir, "redis.conf");
    await fsp.writeFile(configFile, config, { mode: 0o600 });
    await handOver(runDir, user);
    await handOver(dataDir, user);
    return {
      argv: [server, configFile],
      cwd: dataDir,
      // The configuration's digest makes a changed password a changed launch (a restart).
      env: { ...engineBaseEnv(), REDISCLI_AUTH: connection.password, SLIPWAY_CONFIG_DIGEST: createHash("sha256").update(config).digest("hex") },
      secretKeys: ["REDISCLI_AUTH"],
      port: connection.port,
      ...(user ? { user } : {}),
      stopSignal: "SIGTERM",
    };
  },

  async ready({ connection }) {
    const client = await connect(connection.port, connection.password);
    try {
      await client.ping();
    } finally {
      client.destroy();
    }
  },
};

/**
 * Copies another service's data. A stopped server's files are copied as they are. From a
 * running one: SAVE writes a snapshot, which a temporary server on this data directory loads
 * (without append-only files, which would hide the snapshot) and turns into append-only files
 * by switching `appendonly` on, before it shuts down.
 */
async function copyData(server: string, source: SourceDatabase, target: string, user: PrepareInput["user"]): Promise<void> {
  if (!source.running) {
    await fsp.cp(source.dataDir, target, { recursive: true });
    return;
  }
  const sourcePassword = source.env.REDISCLI_AUTH ?? "";
  const from = await connect(source.port, sourcePassword);
  try {
    await from.sendCommand(["SAVE"]);
  } finally {
    from.destroy();
  }
  await fsp.copyFile(path.join(source.dataDir, "dump.rdb"), path.join(target, "dump.rdb"));
  await handOver(target, user);

  const port = await getPort({ host: "127.0.0.1" });
  const password = createHash("sha256").update(`${Date.now()}${Math.random()}`).digest("hex");
  const temporary = spawn(
    server,
    ["--bind", "127.0.0.1", "--port", String(port), "--dir", target, "--appendonly", "no", "--requirepass", password, "--save", ""],
    {
      stdio: "ignore",
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
    },
  );
  const exited = new Promise<void>((resolve) => temporary.once("exit", () => resolve()));
  try {
    let client: Awaited<ReturnType<typeof connect>> | null = null;
    for (let attempt = 0; !client; attempt++) {
      client = await connect(port, password).catch(async (error: unknown) => {
        if (attempt > 100) throw new StepError(`the copied data did not load: ${(error as Error).message}`);
        await sleep(100);
        return null;
      });
    }
    await client.configSet("appendonly", "yes");
    for (;;) {
      const info = await client.info("persistence");
      if (/aof_rewrite_in_progress:0/.test(info) && /aof_rewrite_scheduled:0/.test(info) && /aof_enabled:1/.test(info)) break;
      await sleep(100);
    }
    await client.sendCommand(["SHUTDOWN", "NOSAVE"]).catch(() => undefined);
    client.destroy();
    await exited;
  } finally {
    temporary.kill("SIGKILL");
  }
}
