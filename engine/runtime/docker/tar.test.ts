import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { directoryTar, firstFileOf } from "./tar";

const run = promisify(execFile);
let dir: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-tar-"));
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

/** Checked against GNU tar, as the Engine API's archives are written and read by other tar implementations. */
describe("tar", () => {
  it("writes a directory entry that tar extracts with its mode", async () => {
    const archive = path.join(dir, "dir.tar");
    await fs.writeFile(archive, directoryTar("slipway/run", 0o1777));
    expect((await run("tar", ["-tvf", archive])).stdout).toMatch(/^drwxrwxrwt \S+ +0 [\d-]+ [\d:]+ slipway\/run\/$/m);
    const target = path.join(dir, "extracted");
    await fs.mkdir(target);
    await run("tar", ["-xpf", archive, "-C", target]);
    expect((await fs.stat(path.join(target, "slipway/run"))).mode & 0o7777).toBe(0o1777);
  });

  it("reads the first file of an archive, past pax headers, and refuses one too large", async () => {
    const content = JSON.stringify({ GREETING: "hello", LONG: "x".repeat(700) });
    await fs.writeFile(path.join(dir, "outputs.json"), content);
    for (const format of ["ustar", "pax"]) {
      const archive = path.join(dir, `${format}.tar`);
      // pax with a long attribute: an extended header comes before the file.
      await run("tar", [
        "--format",
        format,
        ...(format === "pax" ? ["--pax-option", `comment=${"c".repeat(600)}`] : []),
        "-cf",
        archive,
        "-C",
        dir,
        "outputs.json",
      ]);
      expect(firstFileOf(await fs.readFile(archive), 1024 * 1024)?.toString("utf8"), format).toBe(content);
    }
    expect(firstFileOf(directoryTar("empty", 0o755), 10)).toBeNull();
    expect(firstFileOf(Buffer.alloc(0), 10)).toBeNull();
    const ustar = await fs.readFile(path.join(dir, "ustar.tar"));
    expect(() => firstFileOf(ustar, 100)).toThrow("the file is larger than 100 bytes");
  });
});
