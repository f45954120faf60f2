/**
 * The copy a clone's Redis database Job runs on a kubernetes cluster (copy-data.ts), run for
 * real: the exact script of the Job's container, in `sh`, with this machine's redis-cli and
 * awk, between two Debian redis-server processes on 127.0.0.1 that ask for passwords
 * (requirepass, as the StatefulSet's server does). No cluster is involved: this shows the
 * script moves every key of a Redis database, not that a cluster runs the Job
 * (kubernetes-runtime.test.ts shows what the runtime asks of a cluster, manifests.test.ts that
 * the Job is a valid one). The image's redis-cli is Redis 7's, as Debian 12's is.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { skipWithout } from "../../../test/support/requirements";
import { type BinaryRedisClient, redisServerBin, startRedisServer, type TestRedis } from "../../../test/support/redis-server";
import { childEnv, engineBaseEnv } from "../shared/processes-env";
import { REDIS_COPY_SCRIPT } from "./copy-scripts";

const run = promisify(execFile);
const bin = redisServerBin();
const skip = skipWithout(bin === null ? "redis-server and redis-cli (apt-get install redis-server)" : null);

let source: TestRedis;
let target: TestRedis;

beforeAll(async () => {
  if (skip) return;
  // A password with a space and a quote: it reaches redis-cli through its environment as it is.
  source = await startRedisServer(bin!, `source "pw" ${randomBytes(9).toString("base64url")}`);
  target = await startRedisServer(bin!, randomBytes(12).toString("base64url"));
}, 60_000);

afterAll(async () => {
  await Promise.all([source?.stop(), target?.stop()]);
}, 60_000);

async function withClient<T>(server: TestRedis, use: (client: BinaryRedisClient) => Promise<T>, db = 0): Promise<T> {
  const client = await server.connect(db);
  try {
    return await use(client);
  } finally {
    client.destroy();
  }
}

beforeEach(async () => {
  if (skip) return;
  await withClient(source, (client) => client.flushAll());
  await withClient(target, async (client) => {
    await client.flushAll();
    await client.configSet("maxmemory", "0");
  });
});

/** The Job container's command, `sh -c <script>`, with the variables its Secrets and manifest give it. */
async function copy(from: { port: number; password: string }, into: { port: number; password: string }) {
  const env = childEnv({
    PATH: engineBaseEnv().PATH,
    SOURCE_HOST: "127.0.0.1",
    SOURCE_PORT: String(from.port),
    SOURCE_USER: "default",
    SOURCE_PASSWORD: from.password,
    TARGET_HOST: "127.0.0.1",
    TARGET_PORT: String(into.port),
    TARGET_USER: "default",
    TARGET_PASSWORD: into.password,
  });
  try {
    const { stdout, stderr } = await run("sh", ["-c", REDIS_COPY_SCRIPT], { env, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

const KEYS = 5000;
/** Every byte value, and a key of bytes that are neither text nor printable. */
const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, index) => index));
const BINARY_KEY = Buffer.from([0x00, 0xff, 0x0a, 0x22, 0x5c, 0x20, 0x0d, 0x09, 0x80, 0x7f]);
const SPACED_KEY = "a key with spaces\nand a newline";
const LARGE = randomBytes(1024 * 1024);

/** A source that holds several thousand keys of every kind, some with a TTL, in two logical databases. */
async function fill(): Promise<void> {
  await withClient(source, async (client) => {
    for (let start = 0; start < KEYS; start += 500) {
      const batch = client.multi();
      for (let index = start; index < start + 500; index++) {
        if (index % 10 === 0) batch.set(`session:${index}`, `user ${index}`, { EX: 3600 });
        else batch.set(`item:${index}`, `value ${index}`);
      }
      await batch.exec();
    }
    await client.set(BINARY_KEY, ALL_BYTES);
    await client.set("large", LARGE);
    await client.hSet(SPACED_KEY, { "field one": "first", "field\ntwo": ALL_BYTES });
    await client.rPush("queue", ["job 1", "job\n2", "job 3"]);
    await client.zAdd("scores", [
      { score: 1.5, value: "ada" },
      { score: -2, value: "grace" },
    ]);
    await client.set("expiring", "soon", { PX: 90_000 });
  });
  await withClient(source, (client) => client.set("in database 3", "three"), 3);
}

/** A key's value, whatever its type, in a form that compares byte for byte (a hash's fields in any order). */
async function valueOf(client: BinaryRedisClient, key: Buffer): Promise<unknown> {
  const hex = (values: Buffer[]) => values.map((value) => value.toString("hex"));
  const type = String(await client.type(key));
  switch (type) {
    case "string":
      return [type, hex([(await client.get(key))!])];
    case "hash":
      return [
        type,
        Object.entries(await client.hGetAll(key))
          .map(([field, value]) => [Buffer.from(field).toString("hex"), hex([value])])
          .sort(),
      ];
    case "list":
      return [type, hex(await client.lRange(key, 0, -1))];
    case "zset":
      return [type, (await client.zRangeWithScores(key, 0, -1)).map(({ value, score }) => [hex([value]), score])];
    default:
      throw new Error(`no comparison for a ${type}`);
  }
}

/** Every key of a database (hex) with its value and its time to live. */
async function contents(server: TestRedis, db = 0): Promise<Map<string, { value: unknown; ttl: number }>> {
  return withClient(
    server,
    async (client) => {
      const found = new Map<string, { value: unknown; ttl: number }>();
      for await (const keys of client.scanIterator({ COUNT: 1000 })) {
        // Each batch's commands at once: the client pipelines them.
        const read = await Promise.all(keys.map(async (key) => ({ key, value: await valueOf(client, key), ttl: await client.pTTL(key) })));
        for (const { key, value, ttl } of read) found.set(key.toString("hex"), { value, ttl });
      }
      return found;
    },
    db,
  );
}

describe.skipIf(skip)("the clone's Redis copy (DUMP | RESTORE through redis-cli), for real", () => {
  it("copies every key of every database with its TTL, binary and spaced keys included; then leaves a target that holds keys alone", async () => {
    await fill();
    const first = await copy(source, target);
    expect(first, first.stderr).toMatchObject({ code: 0, stderr: "" });
    const total = KEYS + 6;
    expect(first.stdout.split("\n")).toEqual([
      `Copying the keys of 127.0.0.1:${source.port} into 127.0.0.1`,
      `Database 0: ${total} keys copied`,
      "Database 3: 1 keys copied",
      `Copied: 127.0.0.1 holds ${total + 1} keys`,
      "",
    ]);
    // Never a password in what the Job's log shows.
    expect(first.stdout + first.stderr).not.toContain(source.password);
    expect(first.stdout + first.stderr).not.toContain(target.password);

    // Each key, of its type, its value byte for byte, with the time it had left.
    for (const db of [0, 3]) {
      const [from, into] = [await contents(source, db), await contents(target, db)];
      expect([...into.keys()].sort()).toEqual([...from.keys()].sort());
      for (const [key, { value, ttl }] of from) {
        const copied = into.get(key)!;
        expect(copied.value, Buffer.from(key, "hex").toString()).toEqual(value);
        if (ttl === -1) expect(copied.ttl).toBe(-1);
        // The time left when the copy read it, from when it was restored: off by the copy's lag, seconds at most.
        else expect(Math.abs(copied.ttl - ttl)).toBeLessThan(30_000);
      }
    }
    await withClient(target, async (client) => {
      expect(await client.get(BINARY_KEY)).toEqual(ALL_BYTES);
      expect(await client.get("large")).toEqual(LARGE);
      expect(await client.hGet(SPACED_KEY, "field\ntwo")).toEqual(ALL_BYTES);
      expect((await client.lRange("queue", 0, -1)).map(String)).toEqual(["job 1", "job\n2", "job 3"]);
      expect(await client.pTTL("session:10")).toBeGreaterThan(3_500_000);
      expect(await client.pTTL("expiring")).toBeLessThanOrEqual(90_000);
      expect(await client.pTTL("item:1")).toBe(-1);
      // The marker of a copy under way is gone once it finished.
      expect(await client.exists("slipway:data-copy-incomplete")).toBe(0);
      await client.set("item:1", "written in the clone");
    });

    // Run again (a re-delivered task, a later deployment): the target holds keys, nothing is copied over them.
    await withClient(source, (client) => client.set("item:2", "changed in the source"));
    const again = await copy(source, target);
    expect(again, again.stderr).toMatchObject({ code: 0, stdout: `127.0.0.1 already holds ${total + 1} keys: nothing copied\n` });
    await withClient(target, async (client) => {
      expect(String(await client.get("item:1"))).toBe("written in the clone");
      expect(String(await client.get("item:2"))).toBe("value 2");
    });
  }, 120_000);

  it("a copy that fails midway removes what it restored and exits with the server's reason", async () => {
    await fill();
    // The target's memory ends before the source's keys do: its RESTOREs are refused from then on.
    await withClient(target, async (client) => {
      const used = Number(/used_memory:(\d+)/.exec(String(await client.info("memory")))![1]);
      await client.configSet("maxmemory", String(used + 512 * 1024));
    });
    const failed = await copy(source, target);
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toContain("the target answered: ERROR,\"OOM command not allowed when used memory > 'maxmemory'.\"");
    expect(failed.stderr).toContain("Nothing copied: the keys restored before the failure were removed");
    expect(failed.stdout + failed.stderr).not.toContain(target.password);
    expect(await withClient(target, (client) => client.dbSize())).toBe(0);
  }, 120_000);

  it("a failed copy whose keys could not be removed is removed and copied again by the next attempt", async () => {
    await withClient(source, (client) => client.set("greeting", "ahoy"));
    // What a copy leaves when its target went away midway: its marker, and some of the keys.
    await withClient(target, async (client) => {
      await client.set("slipway:data-copy-incomplete", `127.0.0.1:${source.port}`);
      await client.set("partial", "from the failed copy");
    });
    const result = await copy(source, target);
    expect(result, result.stderr).toMatchObject({ code: 0 });
    expect(result.stdout).toContain("127.0.0.1 holds 2 keys of a copy that did not finish: removing them to copy again");
    expect(result.stdout).toContain("Copied: 127.0.0.1 holds 1 keys");
    await withClient(target, async (client) => {
      expect((await client.keys("*")).map(String)).toEqual(["greeting"]);
    });
  });

  it("a wrong password fails with redis-cli's reason, prints no password and writes nothing", async () => {
    await withClient(source, (client) => client.set("greeting", "ahoy"));
    const wrongSource = await copy({ port: source.port, password: "not the source password" }, target);
    expect(wrongSource.code).not.toBe(0);
    expect(wrongSource.stderr).toContain("AUTH failed: WRONGPASS invalid username-password pair or user is disabled.");
    expect(wrongSource.stderr).toContain(`Could not read the keys of 127.0.0.1:${source.port}`);
    expect(wrongSource.stdout + wrongSource.stderr).not.toContain("not the source password");
    expect(wrongSource.stdout + wrongSource.stderr).not.toContain(target.password);
    expect(await withClient(target, (client) => client.dbSize())).toBe(0);

    const wrongTarget = await copy(source, { port: target.port, password: "not the target password" });
    expect(wrongTarget.code).not.toBe(0);
    expect(wrongTarget.stderr).toContain("AUTH failed: WRONGPASS invalid username-password pair or user is disabled.");
    expect(wrongTarget.stderr).toContain(`Could not read the keys of 127.0.0.1:${target.port}`);
    expect(wrongTarget.stdout + wrongTarget.stderr).not.toContain("not the target password");
    expect(wrongTarget.stdout + wrongTarget.stderr).not.toContain(source.password);
    expect(await withClient(target, (client) => client.dbSize())).toBe(0);
  });
});
