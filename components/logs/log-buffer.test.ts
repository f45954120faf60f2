import { describe, expect, it } from "vitest";
import { BLOCK_SIZE, emptyBuffer, mergeLines, stripAnsi, toPlainText, type BufferedLine, type LogBuffer } from "./log-buffer";

const line = (seq: number, text = `line ${seq}`): BufferedLine => ({ seq, at: new Date(seq).toISOString(), fd: "stdout", text });
const seqs = (buffer: LogBuffer) => buffer.blocks.flat().map((l) => l.seq);

describe("mergeLines", () => {
  it("keeps lines in seq order, once, whatever the order and overlap of the batches", () => {
    let buffer = mergeLines(emptyBuffer, [line(10), line(30), line(20)]);
    buffer = mergeLines(buffer, [line(30), line(40), line(40)]);
    // A page from the API that overlaps what arrived live, and fills a gap.
    buffer = mergeLines(buffer, [line(20), line(25), line(30)]);
    expect(seqs(buffer)).toEqual([10, 20, 25, 30, 40]);
    expect(buffer.size).toBe(5);
    expect(buffer.lastSeq).toBe(40);
  });

  it("returns the same buffer when nothing is new, so React skips the render", () => {
    const buffer = mergeLines(emptyBuffer, [line(1), line(2)]);
    expect(mergeLines(buffer, [line(1), line(2)])).toBe(buffer);
    expect(mergeLines(buffer, [])).toBe(buffer);
  });

  it("appends without touching full blocks: only the last block changes identity", () => {
    const first = mergeLines(
      emptyBuffer,
      Array.from({ length: BLOCK_SIZE + 5 }, (_, i) => line(i + 1)),
    );
    const next = mergeLines(first, [line(BLOCK_SIZE + 6)]);
    expect(next.blocks[0]).toBe(first.blocks[0]);
    expect(next.blocks[1]).not.toBe(first.blocks[1]);
    expect(next.blocks[1]).toHaveLength(6);
  });

  it("drops the oldest lines beyond the cap and ignores late copies of them", () => {
    let buffer = mergeLines(
      emptyBuffer,
      Array.from({ length: 450 }, (_, i) => line(i + 1)),
      300,
    );
    expect(buffer.size).toBe(300);
    expect(buffer.dropped).toBe(150);
    expect(seqs(buffer)[0]).toBe(151);
    buffer = mergeLines(buffer, [line(100), line(451)], 300);
    expect(seqs(buffer)[0]).toBe(152);
    expect(seqs(buffer)).not.toContain(100);
    expect(buffer.size).toBe(300);
  });
});

describe("plain text", () => {
  it("strips colours and hyperlinks, keeps the text", () => {
    expect(stripAnsi("\u001b[1;32mok\u001b[0m <b>x</b> \u001b]8;;https://e.x\u001b\\link\u001b]8;;\u001b\\")).toBe("ok <b>x</b> link");
  });

  it("downloads one line per line, with timestamps when asked", () => {
    const buffer = mergeLines(emptyBuffer, [line(1000, "\u001b[31ma\u001b[0m"), line(2000, "b")]);
    expect(toPlainText(buffer, false)).toBe("a\nb\n");
    expect(toPlainText(buffer, true)).toBe("1970-01-01T00:00:01.000Z a\n1970-01-01T00:00:02.000Z b\n");
  });
});
