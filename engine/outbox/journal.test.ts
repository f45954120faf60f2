import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { liveAfter, pad, type ChurnValue } from "../../test/fixtures/journal/churn";
import { Journal, readJournal } from "./journal";

const repoRoot = path.resolve(__dirname, "../..");
const dirs: string[] = [];
const journals: Array<Journal<unknown>> = [];
afterEach(async () => {
  for (const journal of journals.splice(0)) await journal.close().catch(() => {});
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function journalDir() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "slipway-journal-"));
  dirs.push(dir);
  return dir;
}

const fileOf = (dir: string) => path.join(dir, "journal.jsonl");
const tmpOf = (dir: string) => `${fileOf(dir)}.tmp`;
const turnEnds = () => new Promise<void>((resolve) => setImmediate(resolve));
const compacting = (dir: string) => fs.existsSync(tmpOf(dir));
async function compactionLands(dir: string) {
  while (compacting(dir)) await new Promise((resolve) => setTimeout(resolve, 1));
}

function open(dir: string, maxBytes = 1024 * 1024, onError?: (error: Error) => void) {
  const { journal } = Journal.open<string>({ dir, maxBytes, parse: (value) => (typeof value === "string" ? value : null), onError });
  journals.push(journal as Journal<unknown>);
  return journal;
}

const replayed = (dir: string) => readJournal(dir, (value) => value as string).entries.map((entry) => entry.value);

/** Live entries, then enough settled ones that the write ending this turn starts a compaction. */
async function startCompaction(journal: Journal<string>, dir: string, live: number, text = "x".repeat(300)) {
  const kept = Array.from({ length: live }, (_, index) => `kept ${index} ${text}`);
  for (const value of kept) journal.append(value);
  const doomed = Array.from({ length: Math.ceil(live * 1.2) + 100 }, () => journal.append(text));
  await turnEnds();
  journal.settle(doomed);
  await turnEnds();
  expect(compacting(dir)).toBe(true);
  return kept;
}

describe("the journal's compaction in the background", () => {
  it("lets the event loop run while a compaction of 20 MB is written and synced", async () => {
    const dir = journalDir();
    const journal = open(dir, 64 * 1024 * 1024);
    const inode = fs.statSync(fileOf(dir)).ino;
    await startCompaction(journal, dir, 60_000);
    // Turns of the event loop keep coming while the old file is still the journal.
    let turns = 0;
    while (compacting(dir)) {
      turns++;
      await turnEnds();
    }
    expect(turns).toBeGreaterThan(1);
    expect(fs.statSync(fileOf(dir)).ino).not.toBe(inode);
    expect(replayed(dir)).toHaveLength(60_000);
  });

  it("writes entries appended and settled during a compaction to the old file at once, and to the new one when it lands", async () => {
    const dir = journalDir();
    const journal = open(dir);
    const kept = await startCompaction(journal, dir, 2000);
    const inode = fs.statSync(fileOf(dir)).ino;
    const during: string[] = [];
    for (let index = 0; compacting(dir) && index < 1000; index++) {
      const value = `during ${index}`;
      const id = journal.append(value);
      if (index % 2 === 0) during.push(value);
      else journal.settle([id]);
      await turnEnds();
      // Each in the old file before its turn ended: a kill now loses nothing.
      if (fs.statSync(fileOf(dir)).ino === inode) expect(replayed(dir)).toEqual([...kept, ...during]);
    }
    expect(during.length).toBeGreaterThan(0);
    await compactionLands(dir);
    expect(fs.statSync(fileOf(dir)).ino).not.toBe(inode);
    expect(replayed(dir)).toEqual([...kept, ...during]);
    // Appends go to the new file from then on.
    journal.append("after");
    await turnEnds();
    expect(replayed(dir)).toEqual([...kept, ...during, "after"]);
  });

  it("gives up a compaction when everything is settled meanwhile: the file stays empty", async () => {
    const dir = journalDir();
    const journal = open(dir);
    const inode = fs.statSync(fileOf(dir)).ino;
    const kept = await startCompaction(journal, dir, 2000);
    expect(kept).toHaveLength(2000);
    const ids = readJournal(dir, (value) => value).entries.map((entry) => entry.id);
    journal.settle(ids);
    expect(fs.statSync(fileOf(dir)).size).toBe(0);
    await compactionLands(dir);
    expect(fs.statSync(fileOf(dir)).ino).toBe(inode);
    expect(fs.statSync(fileOf(dir)).size).toBe(0);
    journal.append("next");
    await turnEnds();
    expect(replayed(dir)).toEqual(["next"]);
  });

  it("closes during a compaction with everything in the old file and no temporary file left", async () => {
    const dir = journalDir();
    const journal = open(dir);
    const kept = await startCompaction(journal, dir, 2000);
    journal.append("last");
    await journal.close();
    expect(compacting(dir)).toBe(false);
    expect(replayed(dir)).toEqual([...kept, "last"]);
  });

  it("reports a compaction that cannot write its temporary file once, keeps the old file, and rewrites it later", async () => {
    const dir = journalDir();
    const errors: Error[] = [];
    const journal = open(dir, 1024 * 1024, (error) => errors.push(error));
    // Root ignores file modes: a directory where the temporary file goes is what stops it here.
    fs.mkdirSync(tmpOf(dir));
    fs.writeFileSync(path.join(tmpOf(dir), "in the way"), "");
    const kept = Array.from({ length: 2000 }, (_, index) => `kept ${index} ${"x".repeat(300)}`);
    for (const value of kept) journal.append(value);
    const doomed = Array.from({ length: 2100 }, () => journal.append("x".repeat(300)));
    await turnEnds();
    journal.settle(doomed);
    await turnEnds();
    expect(errors).toHaveLength(1);
    expect(replayed(dir)).toEqual(kept);
    // Every later write tries again, and fails quietly while it cannot.
    const later = ["later 1", "later 2"];
    for (const value of later) {
      journal.append(value);
      await turnEnds();
    }
    expect(errors).toHaveLength(1);
    fs.rmSync(tmpOf(dir), { recursive: true });
    journal.append("recovered");
    await turnEnds();
    await compactionLands(dir);
    expect(replayed(dir)).toEqual([...kept, ...later, "recovered"]);
    expect(fs.statSync(fileOf(dir)).size).toBeLessThan(2000 * 400);
  });
});

describe("the journal killed at random moments under load", () => {
  it("replays exactly what was live: nothing lost, nothing settled, whatever stage a compaction was at", async () => {
    let killedMidCompaction = 0;
    const rounds = 8;
    for (let round = 0; round < rounds; round++) {
      const dir = journalDir();
      const progress = path.join(dir, "progress");
      const child = spawn(process.execPath, ["--import", "tsx", path.join(repoRoot, "test/fixtures/journal/churn.ts"), path.join(dir, "journal"), progress], {
        cwd: repoRoot,
        stdio: ["ignore", "ignore", "inherit"],
      });
      const exited = new Promise((resolve) => child.once("exit", resolve));
      while (!fs.existsSync(progress) || fs.statSync(progress).size < 200) await new Promise((resolve) => setTimeout(resolve, 5));
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 300));
      child.kill("SIGKILL");
      await exited;

      const journalPath = path.join(dir, "journal");
      if (fs.existsSync(tmpOf(journalPath))) killedMidCompaction++;
      // The last turn reported done was written whole; the next one's records may be there too, or a prefix of them.
      const done = fs.readFileSync(progress, "utf8").split("\n").slice(0, -1);
      const k = Number(done.at(-1));
      const { entries, skipped } = readJournal(journalPath, (value) => value as ChurnValue);
      const keys = entries.map(({ value }) => `${value.turn}:${value.index}`);
      for (const { value } of entries) expect(value.pad).toBe(pad(value.turn, value.index));
      expect(new Set(keys).size).toBe(keys.length);
      expect(skipped).toBeLessThanOrEqual(1);
      const [now, next] = [liveAfter(k), liveAfter(k + 1)];
      for (const key of now) if (next.has(key)) expect(keys).toContain(key);
      for (const key of keys) expect(now.has(key) || next.has(key), `${key} replayed after turn ${k}`).toBe(true);

      // Opened again, it holds the same and no leftover.
      const { journal, entries: again } = Journal.open({ dir: journalPath, maxBytes: 1024 * 1024, parse: (value) => value as ChurnValue });
      expect(again).toEqual(entries);
      expect(fs.existsSync(tmpOf(journalPath))).toBe(false);
      await journal.close();
    }
    // Compactions run back to back under this load: most kills land in one.
    expect(killedMidCompaction).toBeGreaterThan(0);
    console.log(`journal kill test: ${killedMidCompaction} of ${rounds} kills landed mid-compaction`);
  }, 120_000);
});
