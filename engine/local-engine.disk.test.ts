import fs from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineHome, eventually, fixture, service, task } from "../test/engine-harness";
import { appPid } from "../test/support/app-process";
import { type GitServer, startGitServer } from "../test/git-server";
import type { EngineReporter } from "./core";
import { layout, serviceState } from "./runtime/local/layout";

/** An app that logs what it is asked to: `/say?out=…`, or `/spam?tag=…&n=…` for n lines of about 100 bytes. */
const TALKER = `const http = require("node:http");
const pad = "x".repeat(80);
const server = http.createServer((req, res) => {
  const query = new URL(req.url, "http://app").searchParams;
  if (query.has("out")) console.log(query.get("out"));
  if (query.has("spam")) {
    const tag = query.get("spam");
    for (let i = 0; i < Number(query.get("n")); i++) console.log(tag + "-" + i + " " + pad);
  }
  res.end("said");
});
server.listen(Number(process.env.PORT), "127.0.0.1", () => console.log("talker listening"));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
`;

const KEEP_BYTES = 64 * 1024;
const LINES = 20_000;

/**
 * The disk a service's releases take on the local engine stays bounded (release-disk.ts): what the
 * control plane stored is freed from a live release's logs in place, the app running on; old
 * releases go but the newest few; and a log rotated by hand (copytruncate) ships its new lines.
 */
describe("local engine: the disk a service's releases take", () => {
  let git: GitServer;
  let env: Awaited<ReturnType<typeof engineHome>>;
  const id = "5d2e8f1a-3b4c-4d6e-9f0a-1b2c3d4e5f60";
  const app = () => service({ id, name: "talker", config: { git: { url: git.url("talker") } } });
  const paths = () => layout(env.home);
  const ask = async (query: string) => (await env.get("talker-test.localhost", `/?${query}`)).body;

  /**
   * The control plane stores a line of a given source once per stream (log_lines_stream_source_key):
   * a line read again under the same name is dropped, as there; under another name it is stored twice.
   */
  const sources = new Set<string>();
  const controlPlane = (): EngineReporter => ({
    ...env.reporter,
    log: (stream, fd, text, at, origin) => {
      const key = origin && `${JSON.stringify(stream)} ${origin.source}`;
      if (key && sources.has(key)) return origin.stored();
      if (key) sources.add(key);
      env.reporter.log(stream, fd, text, at, origin);
    },
  });
  /** The app's stdout lines (npm's blank lines around its `> node server.js` aside: the test's lines are all different). */
  const texts = () => env.lines.filter((line) => line.stream.kind === "service" && line.fd === "stdout" && line.text !== "").map((line) => line.text);
  const count = (predicate: (text: string) => boolean) => texts().filter(predicate).length;
  const times = (text: string) => count((line) => line === text);
  const spammed = (tag: string) => count((text) => text.startsWith(`${tag}-`));

  const current = async () => serviceState.parse(JSON.parse(await fs.readFile(paths().stateFile(id), "utf8"))).current!;
  const logFile = async () => path.join(paths().releaseDir(id, (await current()).releaseId), "runtime.log");
  /** What the disk holds of the file (its blocks), and its size as the app and the tailer see it. */
  const usage = async (file: string) => {
    const stat = await fs.stat(file);
    return { allocated: stat.blocks * 512, size: stat.size };
  };

  beforeAll(async () => {
    git = await startGitServer();
    await git.createRepo("talker", fixture("node-app"), { "server.js": TALKER });
    env = await engineHome({ drainTimeoutMs: 1_000, stopGraceMs: 2_000, runtimeLogKeepMb: KEEP_BYTES / 1024 / 1024, releasesKept: 1, diskPassMs: 200 });
  });

  afterAll(async () => {
    await env?.cleanup();
    await git?.close();
  });

  it("frees what the control plane stored from a live release's log, without stopping the app or losing a line, across an engine restart", async () => {
    const engine = env.newEngine(controlPlane());
    await engine.start();
    const deploy = task("DEPLOY", [app()]);
    await engine.execute(deploy);
    expect(env.final(deploy.deploymentId)?.status).toBe("succeeded");
    const pid = appPid(engine.services()[0]?.port);

    await ask(`spam=a&n=${LINES}`);
    await eventually(() => spammed("a") === LINES, 20_000, "every line logged");
    const file = await logFile();
    // About 2 MB written; what stays on disk is what is kept of it (64 KiB here), and a few blocks.
    await eventually(async () => (await usage(file)).allocated < 4 * KEEP_BYTES, 10_000, "the stored part of the log freed");
    expect((await usage(file)).size).toBeGreaterThan(LINES * 80);
    // Its end is intact: what a crash's message quotes.
    expect((await fs.readFile(file, "utf8")).trimEnd().split("\n").at(-1)).toMatch(new RegExp(`^a-${LINES - 1} x+$`));

    await engine.shutdown();
    // The app logs on while no engine runs; the next one reads on from the saved offset, never from a freed part.
    await ask(`spam=b&n=${LINES}`);
    const next = env.newEngine(controlPlane());
    await next.start();
    await eventually(() => spammed("b") === LINES, 20_000, "the lines logged while no engine ran");
    await eventually(async () => (await usage(file)).allocated < 4 * KEEP_BYTES, 10_000, "the log freed again");

    // The same process all along, and every line stored once, none of them read from a hole.
    expect(appPid(next.services()[0]?.port)).toBe(pid);
    expect(await ask("out=still-here")).toBe("said");
    await eventually(() => times("still-here") === 1, 10_000, "a line after the restart");
    expect(spammed("a")).toBe(LINES);
    expect(spammed("b")).toBe(LINES);
    expect(new Set(texts()).size).toBe(texts().length);
    expect(texts().some((text) => text.includes("\u0000"))).toBe(false);
    await next.shutdown();
  });

  it("ships the lines of a log truncated under the app (logrotate's copytruncate), once, across an engine restart", async () => {
    const engine = env.newEngine(controlPlane());
    await engine.start();
    await ask("out=before-rotation");
    await eventually(() => times("before-rotation") === 1, 10_000, "the line before the rotation");

    const file = await logFile();
    await fs.copyFile(file, `${file}.1`);
    await fs.truncate(file, 0);
    // Lines at the start of the file again: named after everything read before, not as the first lines were.
    await ask("out=after-rotation-1");
    await eventually(() => times("after-rotation-1") === 1, 10_000, "the first line after the rotation");

    // An engine restarted reads on where the file is now, with the same names: nothing read again, nothing lost.
    await engine.shutdown();
    await ask("out=after-rotation-2");
    const next = env.newEngine(controlPlane());
    await next.start();
    await ask("out=after-rotation-3");
    await eventually(() => times("after-rotation-2") === 1 && times("after-rotation-3") === 1, 10_000, "the lines after the restart");
    expect(times("after-rotation-1")).toBe(1);
    expect(new Set(texts()).size).toBe(texts().length);
    await next.shutdown();
  });

  it("removes releases that no longer serve but the newest (SLIPWAY_RELEASES_KEPT), keeping the live one", async () => {
    const engine = env.newEngine(controlPlane());
    await engine.start();
    const releasesDir = path.join(paths().serviceDir(id), "releases");
    const first = (await current()).releaseId;
    const deployed: string[] = [first];
    for (let i = 0; i < 3; i++) {
      const deploy = task("DEPLOY", [app()]);
      await engine.execute(deploy);
      expect(env.final(deploy.deploymentId)?.status).toBe("succeeded");
      deployed.push((await current()).releaseId);
    }
    // The live one with its checkout, and the one before it with its logs; the older two are gone.
    const [live, previous] = [deployed[3]!, deployed[2]!];
    await eventually(async () => (await fs.readdir(releasesDir)).sort().join(" ") === [previous, live].sort().join(" "), 10_000, "the old releases removed");
    expect((await fs.readdir(paths().releaseDir(id, live))).sort()).toEqual(expect.arrayContaining(["launch.json", "runtime.log", "src"]));
    expect(await fs.readdir(paths().releaseDir(id, previous))).toContain("runtime.log");
    expect(await fs.readdir(paths().releaseDir(id, previous))).not.toContain("src");
    expect(await ask("out=served")).toBe("said");
  });
});
