import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { generateKey } from "./secrets/envelope";
import {
  findUntraversableAncestor,
  homeLayout,
  loadOrCreateAuthSecret,
  loadOrCreateMasterKey,
  loadOrCreatePostgresSettings,
  prepareHome,
  type SlipwayHome,
} from "./home";

let directory: string;
let home: SlipwayHome;
const mode = async (file: string) => (await fs.stat(file)).mode & 0o777;

beforeEach(async () => {
  directory = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-home-"));
  home = await prepareHome(path.join(directory, "home"));
});
afterEach(async () => {
  await fs.rm(directory, { recursive: true, force: true });
});

describe("prepareHome", () => {
  it("creates the home traversable by the postgres user, with the engine and logs folders", async () => {
    expect(await mode(home.root)).toBe(0o755);
    expect((await fs.stat(home.engineHome)).isDirectory()).toBe(true);
    expect((await fs.stat(home.logsDir)).isDirectory()).toBe(true);
    expect(home.engineTokenFile).toBe(path.join(home.root, "engine", "token"));
  });
});

describe("loadOrCreateMasterKey", () => {
  it("creates a 32-byte key once, private to its owner, and reads the same key afterwards", async () => {
    const created = await loadOrCreateMasterKey(home, undefined);
    expect(created.source).toBe("created");
    expect(created.key).toHaveLength(32);
    expect(await mode(home.masterKeyFile)).toBe(0o600);
    const again = await loadOrCreateMasterKey(home, undefined);
    expect(again.source).toBe("file");
    expect(again.key.equals(created.key)).toBe(true);
  });

  it("creates the home when a process other than npm start is the first to need the key", async () => {
    const fresh = homeLayout(path.join(directory, "not-yet-created"));
    expect((await loadOrCreateMasterKey(fresh, undefined)).source).toBe("created");
  });

  it("prefers SLIPWAY_MASTER_KEY over the file", async () => {
    await loadOrCreateMasterKey(home, undefined);
    const fromEnv = generateKey().toString("base64");
    const key = await loadOrCreateMasterKey(home, fromEnv);
    expect(key).toMatchObject({ source: "env", encoded: fromEnv });
  });

  it("refuses a key file that does not hold 32 bytes", async () => {
    await fs.writeFile(home.masterKeyFile, "c2hvcnQ=\n", { mode: 0o600 });
    await expect(loadOrCreateMasterKey(home, undefined)).rejects.toThrow(/master\.key does not hold a valid master key/);
  });

  it("makes a key file restored with loose permissions private again", async () => {
    await fs.writeFile(home.masterKeyFile, `${generateKey().toString("base64")}\n`, { mode: 0o644 });
    await loadOrCreateMasterKey(home, undefined);
    expect(await mode(home.masterKeyFile)).toBe(0o600);
  });
});

describe("loadOrCreateAuthSecret", () => {
  it("creates the secret once, and AUTH_SECRET wins over it", async () => {
    const created = await loadOrCreateAuthSecret(home, undefined);
    expect(created.source).toBe("created");
    expect(await loadOrCreateAuthSecret(home, undefined)).toEqual({ secret: created.secret, source: "file" });
    expect(await loadOrCreateAuthSecret(home, "from-the-environment-0123")).toEqual({ secret: "from-the-environment-0123", source: "env" });
  });
});

describe("loadOrCreatePostgresSettings", () => {
  it("keeps the port and password across starts, and moves only the port when it is taken", async () => {
    const first = await loadOrCreatePostgresSettings(home, async (preferred) => preferred);
    expect(first).toMatchObject({ port: 5433, portChanged: false });
    expect(await mode(home.postgresSettingsFile)).toBe(0o600);

    const second = await loadOrCreatePostgresSettings(home, async (preferred) => preferred);
    expect(second).toEqual(first);

    const moved = await loadOrCreatePostgresSettings(home, async () => 40000);
    expect(moved).toEqual({ port: 40000, password: first.password, portChanged: true });
    expect(await loadOrCreatePostgresSettings(home, async (preferred) => preferred)).toMatchObject({ port: 40000, portChanged: false });
  });

  it("falls back to another port on the first start when 5433 is taken", async () => {
    const settings = await loadOrCreatePostgresSettings(home, async (preferred) => (preferred === 5433 ? 41234 : preferred));
    expect(settings.port).toBe(41234);
  });
});

describe("findUntraversableAncestor", () => {
  it("names the first folder other users cannot enter", async () => {
    await fs.chmod(directory, 0o755); // mkdtemp makes it 0700
    const closed = path.join(directory, "closed");
    await fs.mkdir(path.join(closed, "inside"), { recursive: true });
    expect(await findUntraversableAncestor(path.join(closed, "inside"))).toBeNull();
    await fs.chmod(closed, 0o700);
    expect(await findUntraversableAncestor(path.join(closed, "inside"))).toBe(closed);
  });
});
