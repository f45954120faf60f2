import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";

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
 * - Compacted: rewritten with only its live entries (to a temporary file, synced, renamed over)
 *   when settled records outweigh live ones, and before it would grow past `maxBytes`; truncated
 *   when nothing is live, which is most of the time. At open the rewrite is synchronous; later
 *   it runs in the background (issue 17, item 7: a synchronous one held the engine's event loop
 *   for up to half a second, delaying every log line, keystroke and heartbeat). Appends go on
 *   to the current file meanwhile, so a kill at any moment leaves a complete file under the
 *   journal's name: the old one until the rename, the new one after it. Those appended since
 *   the compaction began are kept in memory too and added to the new file before the rename.
 * - Bounded: the owner keeps live entries under 7/8 of `maxBytes` (engine/outbox/bound.ts decides
 *   what to give up), and a compaction starts once the file passes 15/16 of the bound, leaving
 *   the last sixteenth for what is appended while it runs (4 MiB at the default bound, seconds
 *   of a log burst); appends outrunning it would take the file past the bound until it lands.
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

const open = promisify(fs.open);
const write = promisify(fs.write);
const fdatasync = promisify(fs.fdatasync);
const fsync = promisify(fs.fsync);
const close = promisify(fs.close);

type Live<T> = Map<number, { value: T; bytes: number }>;

/** A rewrite in the background: what was appended since it began (`tail`), to be added to the new file before the rename. */
type Compaction = { tail: string[]; abandoned: boolean };

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
  private readonly tmp: string;
  private fd = -1;
  private readonly live: Live<T> = new Map();
  private nextId: number;
  private liveBytes = 0;
  private fileBytes = 0;
  private pending: string[] = [];
  private pendingBytes = 0;
  private writeQueued = false;
  /** A write failed or was cut short (or a compaction failed): appends wait in memory until the file is rewritten. */
  private rewriteNeeded = false;
  private compaction: Compaction | null = null;
  /** Settles once the compaction in flight has ended (renamed over, or its temporary file removed). */
  private compacted: Promise<void> = Promise.resolve();
  private directorySynced: Promise<void> = Promise.resolve();
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
    this.tmp = `${this.file}.tmp`;
    this.nextId = nextId;
    for (const { id, value } of entries) this.live.set(id, { value, bytes: 0 });
    // Rewritten at once (an engine that cannot write its journal does not start): settled records
    // and a torn last line go, a compaction's leftover too, and appends start on a clean line.
    this.rewriteAtOpen();
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
    // A compaction in flight is given up when the current file holds everything, and waited for
    // when a failed write left entries in memory only.
    if (this.compaction && !this.rewriteNeeded) this.compaction.abandoned = true;
    await this.compacted;
    await this.directorySynced;
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
    const text = this.pending.join("");
    const bytes = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    // A compaction in flight adds these to the new file, whether or not the old one took them.
    this.compaction?.tail.push(text);
    if (!this.rewriteNeeded) this.appendToFile(text, bytes);
    // A rewrite pending, or one worth it; it snapshots what is live now, this turn's entries included.
    if (!this.compaction && (this.rewriteNeeded || this.worthCompacting())) this.startCompaction();
  }

  private appendToFile(text: string, bytes: number): void {
    try {
      const written = fs.writeSync(this.fd, text);
      this.fileBytes += written;
      // A short write (disk full) leaves half a record: nothing more is appended after it until the file is rewritten.
      if (written < bytes) throw new Error(`wrote ${written} of ${bytes} bytes of the outbox's journal`);
      this.recovered();
    } catch (error) {
      this.rewriteNeeded = true;
      return this.report(error);
    }
    this.syncSoon();
  }

  private worthCompacting(): boolean {
    const { maxBytes } = this.options;
    const settledBytes = this.fileBytes - this.liveBytes;
    // Near the bound, rewritten if that gives back a sixteenth of it: it does, as the owner keeps
    // live entries under 7/8 of the bound, unless events alone fill it. The last sixteenth takes
    // what is appended while the compaction runs.
    const nearBound = this.fileBytes > (maxBytes * 15) / 16 && settledBytes >= maxBytes / 16;
    // Settled records outweighing live ones, and worth a rewrite: the rewrite costs at most what they do.
    const wasteful = settledBytes > this.liveBytes && settledBytes >= maxBytes / 16;
    return nearBound || wasteful;
  }

  private startCompaction(): void {
    let fd: number;
    try {
      // Quick (no sync), and done at once so the temporary file exists exactly while a compaction
      // is in flight. A leftover of one cut short would keep its mode: made anew, 0600.
      fs.rmSync(this.tmp, { force: true });
      fd = fs.openSync(this.tmp, "ax", 0o600);
    } catch (error) {
      this.rewriteNeeded = true;
      return this.report(error);
    }
    const compaction: Compaction = { tail: [], abandoned: false };
    this.compaction = compaction;
    this.compacted = this.compact(compaction, fd).finally(() => {
      this.compaction = null;
    });
  }

  /**
   * Writes the live entries to the temporary file and syncs it, off the event loop; then, in one
   * turn, adds the tail and renames it over. Given up (its temporary file removed) if the
   * journal was truncated or closed meanwhile; on failure the old file stays, with a rewrite pending.
   */
  private async compact(compaction: Compaction, tmpFd: number): Promise<void> {
    // Entries added from now on are in the tail; those settled meanwhile are skipped, or settled again by the tail.
    const before = this.nextId;
    let fd = tmpFd;
    try {
      let bytes = 0;
      for (const chunk of records(this.live, before)) {
        if (compaction.abandoned) return;
        bytes += await writeAll(fd, chunk);
      }
      if (compaction.abandoned) return;
      await fdatasync(fd);
      if (compaction.abandoned) return;
      // In the page cache, like any append; the sync that follows covers them.
      const tail = compaction.tail.join("");
      bytes += writeAllSync(fd, tail);
      fs.renameSync(this.tmp, this.file);
      this.replaceFile(fd, bytes);
      fd = -1;
    } catch (error) {
      if (compaction.abandoned) return;
      this.rewriteNeeded = true;
      this.report(error);
    } finally {
      if (fd !== -1) {
        await close(fd).catch(() => {});
        await fs.promises.rm(this.tmp, { force: true }).catch(() => {});
      }
    }
  }

  /** Appends go to the renamed file from now on; the old descriptor is closed once a sync on it has ended. */
  private replaceFile(fd: number, bytes: number): void {
    this.retire(this.fd);
    this.fd = fd;
    this.fileBytes = bytes;
    this.rewriteNeeded = false;
    this.recovered();
    this.syncSoon();
    // The rename is durable once the directory is synced too.
    this.directorySynced = syncDirectory(this.options.dir).catch((error: unknown) => this.report(error));
  }

  /** The rewrite at open, synchronous: its file's descriptor is the one appends go to. */
  private rewriteAtOpen(): void {
    fs.rmSync(this.tmp, { force: true });
    const fd = fs.openSync(this.tmp, "ax", 0o600);
    let total = 0;
    try {
      for (const chunk of records(this.live)) total += writeAllSync(fd, chunk);
      fs.fsyncSync(fd);
      fs.renameSync(this.tmp, this.file);
    } catch (error) {
      fs.closeSync(fd);
      fs.rmSync(this.tmp, { force: true });
      throw error;
    }
    this.fd = fd;
    this.liveBytes = total;
    this.fileBytes = total;
    const dir = fs.openSync(this.options.dir, "r");
    try {
      fs.fsyncSync(dir);
    } finally {
      fs.closeSync(dir);
    }
  }

  /** Nothing live: the file is emptied in place (no sync needed: replaying settled records again would only re-send what the control plane stores once). */
  private truncate(): void {
    this.pending = [];
    this.pendingBytes = 0;
    if (this.closed) return;
    // Its snapshot and tail hold entries now settled, and the settle records just dropped are not in its tail.
    if (this.compaction) this.compaction.abandoned = true;
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
    const closeFd = () => fs.close(fd, () => {});
    if (this.syncing) void this.syncing.then(closeFd);
    else closeFd();
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

/**
 * The records of the live entries with ids under `before`, in pieces of about {@link CHUNK}
 * characters. Read lazily: a compaction awaits between pieces, and a Map's iterator skips
 * entries deleted meanwhile.
 */
function* records<T>(live: Live<T>, before = Infinity): Generator<string> {
  let chunk = "";
  for (const [id, entry] of live) {
    // Ids increase in insertion order: the rest were added after `before`.
    if (id >= before) break;
    const line = `${JSON.stringify({ i: id, v: entry.value })}\n`;
    entry.bytes = Buffer.byteLength(line);
    chunk += line;
    if (chunk.length >= CHUNK) {
      yield chunk;
      chunk = "";
    }
  }
  if (chunk !== "") yield chunk;
}

function writeAllSync(fd: number, text: string): number {
  const buffer = Buffer.from(text);
  for (let offset = 0; offset < buffer.length;) offset += fs.writeSync(fd, buffer, offset);
  return buffer.length;
}

async function writeAll(fd: number, text: string): Promise<number> {
  const buffer = Buffer.from(text);
  for (let offset = 0; offset < buffer.length;) offset += (await write(fd, buffer, offset)).bytesWritten;
  return buffer.length;
}

/** Makes a rename durable: the new directory entry is on disk too. */
async function syncDirectory(dir: string): Promise<void> {
  const fd = await open(dir, "r");
  try {
    await fsync(fd);
  } finally {
    await close(fd);
  }
}
