import fs from "node:fs";
import path from "node:path";

/**
 * An append-only journal of JSON entries on disk: what the engine's outbox (engine/outbox.ts)
 * must still have if the engine is killed before the control plane has stored it (issue 12).
 *
 * One file, `journal.jsonl`, one record a line:
 *   {"i":17,"v":{…}}   an entry, with its id (increasing for the life of the file)
 *   {"a":[17,18]}      entries settled (stored, refused for good, or dropped): not to be replayed
 *
 * - Durable: the records of one turn of the event loop are written with one write(2) at its end,
 *   so an entry is in the kernel's hands (it survives the engine being killed) before the turn
 *   that queued it ends; an fdatasync follows at once in the background (it survives the host
 *   losing power a moment later). A synchronous fsync per entry would stall the engine on every
 *   log line.
 * - Torn writes: an engine killed in the middle of a write leaves a last line cut short; replay
 *   skips it, like any line that does not parse, and the journal is rewritten at open.
 * - Compacted: rewritten with only its live entries (to a temporary file, fsynced, renamed over)
 *   at open, when settled records outweigh live ones, and before it would grow past `maxBytes`;
 *   truncated when nothing is live, which is most of the time.
 * - Bounded: the owner keeps live entries under 7/8 of `maxBytes` (engine/outbox/bound.ts decides
 *   what to give up), and the file is rewritten before settled records would take it past the bound.
 */

export type JournalOptions<T> = {
  dir: string;
  maxBytes: number;
  /** Reads an entry's value back at replay; null for one it cannot read (skipped and counted). */
  parse: (value: unknown) => T | null;
  /** A write or sync that failed: entries stay in memory, and the journal is rewritten at the next write. */
  onError?: (error: Error) => void;
};

export type Replayed<T> = {
  entries: Array<{ id: number; value: T }>;
  /** Lines skipped: a torn last line, or records that do not parse. */
  skipped: number;
};

const FILE = "journal.jsonl";
/** Writes of a compaction go out in pieces of this size, not as one string of up to `maxBytes`. */
const CHUNK = 1 << 20;

/** Reads a journal without changing it: its live entries in the order they were appended. */
export function readJournal<T>(dir: string, parse: (value: unknown) => T | null): Replayed<T> & { lastId: number } {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, FILE), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { entries: [], skipped: 0, lastId: 0 };
    throw error;
  }
  const live = new Map<number, T>();
  let lastId = 0;
  let skipped = 0;
  const lines = text.split("\n");
  // What follows the last newline is a record cut short by a kill mid-write (or nothing).
  if (lines.pop() !== "") skipped++;
  for (const line of lines) {
    if (line === "") continue;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      skipped++;
      continue;
    }
    if (isEntry(record)) {
      lastId = Math.max(lastId, record.i);
      const value = parse(record.v);
      if (value === null) skipped++;
      else live.set(record.i, value);
    } else if (isSettled(record)) {
      for (const id of record.a) live.delete(id);
    } else {
      skipped++;
    }
  }
  const entries = [...live].map(([id, value]) => ({ id, value })).sort((a, b) => a.id - b.id);
  return { entries, skipped, lastId };
}

const isEntry = (record: unknown): record is { i: number; v: unknown } =>
  typeof record === "object" && record !== null && Number.isSafeInteger((record as { i?: unknown }).i) && "v" in record;
const isSettled = (record: unknown): record is { a: number[] } => typeof record === "object" && record !== null && Array.isArray((record as { a?: unknown }).a);

export class Journal<T> {
  private readonly file: string;
  private fd = -1;
  private readonly live = new Map<number, { value: T; bytes: number }>();
  private nextId: number;
  private liveBytes = 0;
  private fileBytes = 0;
  private pending: string[] = [];
  private pendingBytes = 0;
  private writeQueued = false;
  /** A write failed or was cut short: the file no longer matches memory until rewritten. */
  private rewriteNeeded = false;
  private syncing: Promise<void> | null = null;
  private syncAgain = false;
  private failing = false;
  private closed = false;

  /** Opens (creating it, 0700/0600) the journal in `dir`, and returns it with what it held, settled entries left out. */
  static open<T>(options: JournalOptions<T>): { journal: Journal<T> } & Replayed<T> {
    fs.mkdirSync(options.dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(options.dir, 0o700);
    const { entries, skipped, lastId } = readJournal(options.dir, options.parse);
    const journal = new Journal(options, entries, lastId + 1);
    return { journal, entries, skipped };
  }

  private constructor(
    private readonly options: JournalOptions<T>,
    entries: Array<{ id: number; value: T }>,
    nextId: number,
  ) {
    this.file = path.join(options.dir, FILE);
    this.nextId = nextId;
    for (const { id, value } of entries) this.live.set(id, { value, bytes: 0 });
    // Rewritten at once (an engine that cannot write its journal does not start): settled records
    // and a torn last line go, and appends start on a clean line.
    this.rewrite();
  }

  /** Bytes of the live entries, as written on disk. */
  get bytes(): number {
    return this.liveBytes;
  }

  /** Bytes an entry takes on disk (0 once settled). */
  sizeOf(id: number): number {
    return this.live.get(id)?.bytes ?? 0;
  }

  /** Adds an entry; it is written before the current turn of the event loop ends. */
  append(value: T): number {
    const id = this.nextId++;
    const line = `${JSON.stringify({ i: id, v: value })}\n`;
    const bytes = Buffer.byteLength(line);
    this.live.set(id, { value, bytes });
    this.liveBytes += bytes;
    this.queue(line, bytes);
    return id;
  }

  /** Forgets entries for good: they will not be replayed. */
  settle(ids: readonly number[]): void {
    const settled: number[] = [];
    for (const id of ids) {
      const entry = this.live.get(id);
      if (!entry) continue;
      this.live.delete(id);
      this.liveBytes -= entry.bytes;
      settled.push(id);
    }
    if (settled.length === 0) return;
    if (this.live.size === 0) return this.truncate();
    const line = `${JSON.stringify({ a: settled })}\n`;
    this.queue(line, Buffer.byteLength(line));
  }

  /** Writes what is queued and waits for it to be on disk; entries added afterwards stay in memory only. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.write();
    this.closed = true;
    await this.syncing;
    try {
      fs.fsyncSync(this.fd);
    } catch (error) {
      this.report(error);
    }
    fs.closeSync(this.fd);
  }

  private queue(line: string, bytes: number): void {
    this.pending.push(line);
    this.pendingBytes += bytes;
    if (this.writeQueued) return;
    this.writeQueued = true;
    queueMicrotask(() => this.write());
  }

  private write(): void {
    this.writeQueued = false;
    if (this.closed || (this.pending.length === 0 && !this.rewriteNeeded)) return;
    const total = this.fileBytes + this.pendingBytes;
    const settledBytes = total - this.liveBytes;
    // Past the bound, rewritten if that gives back an eighth of it: it does, as the owner keeps
    // live entries under 7/8 of the bound, unless events alone fill it.
    const overflowing = total > this.options.maxBytes && settledBytes >= this.options.maxBytes / 8;
    // Settled records outweighing live ones, and worth a rewrite: the rewrite costs at most what they do.
    const wasteful = settledBytes > this.liveBytes && settledBytes >= this.options.maxBytes / 16;
    if (this.rewriteNeeded || overflowing || wasteful) return this.compact();
    const text = this.pending.join("");
    const bytes = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    try {
      const written = fs.writeSync(this.fd, text);
      this.fileBytes += written;
      // A short write (disk full) leaves half a record: the next write rewrites the file.
      if (written < bytes) throw new Error(`wrote ${written} of ${bytes} bytes of the outbox's journal`);
      this.recovered();
    } catch (error) {
      this.rewriteNeeded = true;
      return this.report(error);
    }
    this.syncSoon();
  }

  /** Rewrites the file with the live entries only; on failure the old file stays, with a rewrite pending. */
  private compact(): void {
    try {
      this.rewrite();
      this.recovered();
    } catch (error) {
      this.rewriteNeeded = true;
      this.report(error);
    }
  }

  private rewrite(): void {
    const tmp = `${this.file}.tmp`;
    let total = 0;
    let tmpFd = -1;
    try {
      // A leftover of a rewrite cut short would keep its mode: made anew, 0600.
      fs.rmSync(tmp, { force: true });
      tmpFd = fs.openSync(tmp, "w", 0o600);
      let chunk = "";
      for (const [id, entry] of this.live) {
        const line = `${JSON.stringify({ i: id, v: entry.value })}\n`;
        entry.bytes = Buffer.byteLength(line);
        total += entry.bytes;
        chunk += line;
        if (chunk.length >= CHUNK) {
          writeAll(tmpFd, chunk);
          chunk = "";
        }
      }
      writeAll(tmpFd, chunk);
      fs.fsyncSync(tmpFd);
      fs.closeSync(tmpFd);
      tmpFd = -1;
      fs.renameSync(tmp, this.file);
    } catch (error) {
      if (tmpFd !== -1) fs.closeSync(tmpFd);
      fs.rmSync(tmp, { force: true });
      throw error;
    }
    const previous = this.fd;
    this.fd = fs.openSync(this.file, "a", 0o600);
    if (previous !== -1) this.retire(previous);
    this.liveBytes = total;
    this.fileBytes = total;
    this.pending = [];
    this.pendingBytes = 0;
    this.rewriteNeeded = false;
    syncDirectory(this.options.dir);
  }

  /** Nothing live: the file is emptied in place (no sync needed: replaying settled records again would only re-send what the control plane stores once). */
  private truncate(): void {
    this.pending = [];
    this.pendingBytes = 0;
    if (this.closed) return;
    try {
      fs.ftruncateSync(this.fd, 0);
      this.fileBytes = 0;
      this.rewriteNeeded = false;
    } catch (error) {
      this.rewriteNeeded = true;
      this.report(error);
    }
  }

  /** One fdatasync at a time, in the background; writes meanwhile are covered by one more. */
  private syncSoon(): void {
    if (this.syncing) {
      this.syncAgain = true;
      return;
    }
    const fd = this.fd;
    this.syncing = new Promise<void>((resolve) =>
      fs.fdatasync(fd, (error) => {
        if (error) this.report(error);
        resolve();
      }),
    ).then(() => {
      this.syncing = null;
      if (!this.syncAgain) return;
      this.syncAgain = false;
      this.syncSoon();
    });
  }

  /** Closes the descriptor of a file replaced by a compaction, once a sync running on it has ended. */
  private retire(fd: number): void {
    const close = () => fs.close(fd, () => {});
    if (this.syncing) void this.syncing.then(close);
    else close();
  }

  /** Reports the first failure of a streak (a full disk would otherwise report every line). */
  private report(error: unknown): void {
    if (this.failing) return;
    this.failing = true;
    this.options.onError?.(error instanceof Error ? error : new Error(String(error)));
  }

  private recovered(): void {
    this.failing = false;
  }
}

function writeAll(fd: number, text: string): void {
  const buffer = Buffer.from(text);
  for (let offset = 0; offset < buffer.length;) offset += fs.writeSync(fd, buffer, offset);
}

/** Makes a rename durable: the new directory entry is on disk too. */
function syncDirectory(dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
