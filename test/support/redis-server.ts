import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { testPort } from "./ports";
import { createClient, RESP_TYPES } from "redis";
import { eventually } from "../engine-harness";

/** Debian's redis-server (the redis-server package), if this machine has it. */
export function redisServerBin(): string | null {
  return ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].find((file) => fs.existsSync(file)) ?? null;
}

/** A client whose replies are Buffers: binary keys and values compare byte for byte. */
export type BinaryRedisClient = ReturnType<typeof binaryClient>;

function binaryClient(port: number, password: string) {
  const client = createClient({ socket: { host: "127.0.0.1", port, reconnectStrategy: false }, password }).withTypeMapping({
    [RESP_TYPES.BLOB_STRING]: Buffer,
  });
  client.on("error", () => undefined);
  return client;
}

export type TestRedis = {
  port: number;
  password: string;
  /** A connected client of database `db` (0 unless said); callers close it. */
  connect: (db?: number) => Promise<BinaryRedisClient>;
  stop: () => Promise<void>;
};

/**
 * A redis-server on a free port of 127.0.0.1 that asks for `password` (requirepass, so the
 * `default` user's), with no persistence, in a directory of its own. Its configuration is
 * read from stdin (`redis-server -`), so the password is not on its command line.
 */
export async function startRedisServer(bin: string, password: string): Promise<TestRedis> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), "slipway-redis-"));
  const port = await testPort();
  const quoted = `"${password.replace(/[\\"]/g, (character) => `\\${character}`)}"`;
  const config = ["bind 127.0.0.1", `port ${port}`, `requirepass ${quoted}`, 'save ""', "appendonly no", `dir ${dir}`, ""].join("\n");
  const child = spawn(bin, ["-"], { stdio: ["pipe", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stdin.end(config);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const connect = async (db = 0) => {
    const client = binaryClient(port, password);
    await client.connect();
    if (db !== 0) await client.select(db);
    return client;
  };
  await eventually(
    async () => {
      const client = await connect();
      await client.ping();
      client.destroy();
      return true;
    },
    15_000,
    `redis-server to accept connections\n${output}`,
  );
  return {
    port,
    password,
    connect,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
      await fs.promises.rm(dir, { recursive: true, force: true });
    },
  };
}
