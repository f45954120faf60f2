import { watch, type FSWatcher } from "node:fs";
import fs from "node:fs/promises";

/**
 * A line of the log and where it lies in the log's whole history: `offset` of its first byte,
 * `end` after its newline, counted from the first byte the file ever held (see {@link LogTailer}).
 */
export type TailedLine = { text: string; offset: number; end: number };

/** What a tailer needs besides the file, when the log may have been truncated before (a rotation's copytruncate). */
export type LogNumbering = {
  /** Where byte 0 of the file as it is now lies in the log's history: 0 until the file was first truncated. */
  base: number;
  /** The file was found truncated: its byte 0 now lies at `base`. Saved with the offsets, or an engine restarted reads it again under other names. */
  onTruncated?: (base: number) => void;
};

/**
 * Follows a release's runtime.log by byte offset. Only complete lines are reported, each with
 * its place in the log, so the caller can save how far the lines it got rid of reach (an engine
 * restarted from there loses nothing) and name each line by its offset (one read again is known
 * for the same line, and stored once).
 *
 * Offsets count the log's history, not the file's bytes: a file truncated under the app (an
 * admin's logrotate with copytruncate) starts over at byte 0, and its lines would otherwise take
 * offsets, hence names, that earlier lines already have, and be dropped as their duplicates. So
 * a truncation moves `base` past everything read before, and the offset of a line is `base` plus
 * its place in the file. A truncation is seen as a file shorter than what was read of it; one the
 * app wrote past that size again before the next read is not seen (the read goes on from the old
 * offset, skipping what was written at the start of the new file), as in every shipper that
 * follows a file by offset: the engine's own bound on the file (release-disk.ts) truncates nothing.
 */
export class LogTailer {
  private timer: NodeJS.Timeout | null = null;
  private watcher: FSWatcher | null = null;
  private reading: Promise<void> = Promise.resolve();
  private queued = false;
  /** Where the next read starts in the file. */
  private offset: number;
  private base: number;

  /** `offset`: in the log's history, where the lines not yet got rid of start. */
  constructor(
    private readonly file: string,
    offset: number,
    private readonly onLines: (lines: TailedLine[]) => void,
    private readonly intervalMs = 250,
    private readonly numbering: LogNumbering = { base: 0 },
  ) {
    this.base = numbering.base;
    // Below the base: lines of the file before its truncation were never got rid of, and are gone with it.
    this.offset = Math.max(offset - this.base, 0);
  }

  /**
   * Reads as soon as the file changes (inotify, through fs.watch) so lines reach the control
   * plane within milliseconds; the interval stays as a safety net for changes a watch misses
   * and for a file that does not exist yet.
   */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.poll(), this.intervalMs);
    this.timer.unref();
    this.watch();
    void this.poll();
  }

  /** Reads whatever is complete now, then stops. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.watcher?.close();
    this.watcher = null;
    await this.poll();
  }

  /** Queues one read; a burst of change notifications while a read is waiting adds nothing. */
  poll(): Promise<void> {
    if (this.queued) return this.reading;
    this.queued = true;
    this.reading = this.reading
      .then(() => {
        this.queued = false;
        return this.readMore();
      })
      .catch(() => undefined);
    return this.reading;
  }

  private watch(): void {
    if (this.watcher) return;
    try {
      this.watcher = watch(this.file, { persistent: false }, () => void this.poll());
      this.watcher.on("error", () => {
        this.watcher?.close();
        this.watcher = null;
      });
    } catch {
      // Not there yet: the interval reads it once it appears, and watches it from then on.
      this.watcher = null;
    }
  }

  private async readMore(): Promise<void> {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.file, "r");
    } catch {
      return;
    }
    if (!this.watcher && this.timer) this.watch();
    try {
      const { size } = await handle.stat();
      // A truncated file (rotated by hand) starts over rather than reading garbage, its lines numbered after those read.
      if (size < this.offset) {
        this.base += this.offset;
        this.offset = 0;
        this.numbering.onTruncated?.(this.base);
      }
      while (this.offset < size) {
        const length = Math.min(size - this.offset, 256 * 1024);
        const buffer = Buffer.alloc(length);
        const { bytesRead } = await handle.read(buffer, 0, length, this.offset);
        const lastNewline = buffer.lastIndexOf(0x0a, bytesRead - 1);
        if (lastNewline < 0) {
          // A single line longer than the chunk: report it in pieces rather than stall.
          if (bytesRead < 256 * 1024) return;
          this.emit(buffer.subarray(0, bytesRead), bytesRead);
          continue;
        }
        this.emit(buffer.subarray(0, lastNewline), lastNewline + 1);
      }
    } finally {
      await handle.close();
    }
  }

  private emit(chunk: Buffer, consumed: number): void {
    const lines: TailedLine[] = [];
    for (let start = 0; ;) {
      const newline = chunk.indexOf(0x0a, start);
      const text = chunk
        .subarray(start, newline < 0 ? chunk.length : newline)
        .toString("utf8")
        .replace(/\r$/, "");
      const at = this.base + this.offset;
      lines.push({ text, offset: at + start, end: at + (newline < 0 ? consumed : newline + 1) });
      if (newline < 0) break;
      start = newline + 1;
    }
    this.offset += consumed;
    this.onLines(lines);
  }
}
