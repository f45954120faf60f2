/**
 * The lines a log viewer holds, kept in sequence order without duplicates, in immutable blocks
 * so that appending a line re-renders only the last block. Lines come from two sources that
 * overlap (API pages after a seq, and `log:lines` pushed over the socket); merging by seq makes
 * the overlap harmless. Seqs increase within a stream but are not contiguous (the engine numbers
 * lines from a microsecond clock), so "nothing lost" means: every seq the API has, once.
 */

export type LogFd = "stdout" | "stderr" | "system";
export type BufferedLine = { seq: number; at: string; fd: LogFd; text: string };

/** Lines per block: small enough that re-rendering the last one is cheap, large enough to keep the block count low. */
export const BLOCK_SIZE = 200;
/** The most lines a viewer keeps; older ones are dropped (and counted) as new ones arrive. */
export const DEFAULT_CAP = 20_000;

export type LogBuffer = {
  readonly blocks: readonly (readonly BufferedLine[])[];
  readonly size: number;
  /** Highest seq held (0 when empty). */
  readonly lastSeq: number;
  /** Lines dropped from the front to stay under the cap. */
  readonly dropped: number;
  /** Lines at or below this seq were dropped: late copies of them are ignored, not re-added. */
  readonly droppedThrough: number;
};

export const emptyBuffer: LogBuffer = { blocks: [], size: 0, lastSeq: 0, dropped: 0, droppedThrough: 0 };

function has(buffer: LogBuffer, seq: number): boolean {
  // Blocks are in order: find the block whose range holds seq, then binary-search inside it.
  let low = 0;
  let high = buffer.blocks.length - 1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    const block = buffer.blocks[middle]!;
    if (seq < block[0]!.seq) high = middle - 1;
    else if (seq > block[block.length - 1]!.seq) low = middle + 1;
    else {
      let a = 0;
      let b = block.length - 1;
      while (a <= b) {
        const m = (a + b) >> 1;
        const value = block[m]!.seq;
        if (value === seq) return true;
        if (value < seq) a = m + 1;
        else b = m - 1;
      }
      return false;
    }
  }
  return false;
}

function toBlocks(lines: readonly BufferedLine[]): BufferedLine[][] {
  const blocks: BufferedLine[][] = [];
  for (let i = 0; i < lines.length; i += BLOCK_SIZE) blocks.push(lines.slice(i, i + BLOCK_SIZE));
  return blocks;
}

/**
 * Adds lines (in any order, with duplicates) and returns a new buffer; the input is unchanged
 * and unchanged blocks keep their identity. Returns the same buffer when nothing was new.
 */
export function mergeLines(buffer: LogBuffer, incoming: readonly BufferedLine[], cap: number = DEFAULT_CAP): LogBuffer {
  if (incoming.length === 0) return buffer;
  const sorted = [...incoming].sort((a, b) => a.seq - b.seq);
  const appended: BufferedLine[] = [];
  const inserted: BufferedLine[] = [];
  let last = buffer.lastSeq;
  for (const line of sorted) {
    if (line.seq <= buffer.droppedThrough) continue;
    if (line.seq > last) {
      appended.push(line);
      last = line.seq;
    } else if (line.seq < buffer.lastSeq && !has(buffer, line.seq) && inserted.at(-1)?.seq !== line.seq) {
      // Older than what we hold and missing: a gap being filled (an API page racing live lines).
      inserted.push(line);
    }
  }
  if (appended.length === 0 && inserted.length === 0) return buffer;

  let blocks: (readonly BufferedLine[])[];
  if (inserted.length > 0) {
    // The rare path: rebuild the blocks around the filled gap.
    const all = [...buffer.blocks.flat(), ...inserted].sort((a, b) => a.seq - b.seq);
    blocks = toBlocks([...all, ...appended]);
  } else {
    blocks = [...buffer.blocks];
    let rest = appended;
    const tail = blocks.at(-1);
    if (tail && tail.length < BLOCK_SIZE) {
      const room = BLOCK_SIZE - tail.length;
      blocks[blocks.length - 1] = [...tail, ...rest.slice(0, room)];
      rest = rest.slice(room);
    }
    blocks.push(...toBlocks(rest));
  }

  let size = buffer.size + appended.length + inserted.length;
  let dropped = buffer.dropped;
  let droppedThrough = buffer.droppedThrough;
  while (size > cap && blocks.length > 0) {
    const first = blocks[0]!;
    const excess = size - cap;
    if (excess >= first.length) {
      blocks.shift();
      size -= first.length;
      dropped += first.length;
      droppedThrough = first[first.length - 1]!.seq;
    } else {
      blocks[0] = first.slice(excess);
      size -= excess;
      dropped += excess;
      droppedThrough = first[excess - 1]!.seq;
    }
  }
  return { blocks, size, lastSeq: Math.max(buffer.lastSeq, last), dropped, droppedThrough };
}

/** Removes ANSI escape sequences (CSI and OSC), for search and for the downloaded file. */
// eslint-disable-next-line no-control-regex
const ANSI_PATTERN = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)|\u001b[@-Z\\-_]/g;
export function stripAnsi(text: string): string {
  return text.replace(ANSI_PATTERN, "");
}

/** The `.log` file of what is loaded: plain text, one line each, optionally with ISO timestamps. */
export function toPlainText(buffer: LogBuffer, withTimestamps: boolean): string {
  const out: string[] = [];
  for (const block of buffer.blocks) for (const line of block) out.push(withTimestamps ? `${line.at} ${stripAnsi(line.text)}` : stripAnsi(line.text));
  return out.length > 0 ? `${out.join("\n")}\n` : "";
}
