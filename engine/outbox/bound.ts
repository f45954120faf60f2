import type { LogLine, LogStream } from "../protocol/events";
import type { Journal } from "./journal";
import type { Lane, Queued } from "./lane";
import type { OutboxRecord } from "./records";

/** A stream's lines: shedding leaves the ones being sent (`sending`) alone, so the ones removed once stored are the ones sent. */
export type LineQueue = Lane<LogLine> & {
  stream: LogStream;
  /** The line that says how many lines were dropped before it, while it waits: later drops update it rather than add another. */
  marker: { entry: Queued<LogLine>; count: number } | null;
};

/**
 * What the outbox gives up when its journal nears its bound (SLIPWAY_ENGINE_OUTBOX_MB), a control
 * plane having been unable to store anything for long: past 7/8 of the bound, the oldest lines,
 * down to 3/4 of it. The journal rewrites itself when the file would outgrow the bound, which
 * then reclaims at least the eighth left for settled records: one rewrite per eighth of the bound
 * written, not one per line. Apps' runtime lines go first; a deployment's build output only when
 * no runtime line is left, since it is what explains the deployment's outcome. Events are never
 * dropped: a journal of events alone may outgrow the bound. Returns how many lines were dropped.
 */
export function keepWithinBound(journal: Journal<OutboxRecord>, queues: Map<string, LineQueue>, maxBytes: number): number {
  if (journal.bytes <= (maxBytes * 7) / 8) return 0;
  let bytes = journal.bytes;
  const next = new Map<LineQueue, number>();
  const dropped = new Map<LineQueue, Array<Queued<LogLine>>>();
  while (bytes > (maxBytes * 3) / 4) {
    const pick = oldestDroppable(queues.values(), "service", next) ?? oldestDroppable(queues.values(), "deployment", next);
    if (!pick) break;
    const line = pick.queue.entries[pick.index]!;
    next.set(pick.queue, pick.index + 1);
    const lines = dropped.get(pick.queue) ?? [];
    dropped.set(pick.queue, lines);
    lines.push(line);
    bytes -= journal.sizeOf(line.id);
  }
  let count = 0;
  for (const [queue, lines] of dropped) {
    const gone = new Set(lines);
    queue.entries = queue.entries.filter((queued) => !gone.has(queued));
    journal.settle(lines.map((queued) => queued.id));
    markDropped(journal, queue, lines.length, lines.at(-1)!.item);
    count += lines.length;
  }
  return count;
}

/** Says in the stream, where the lines were, how many were dropped: one line per run of drops, updated while it waits. */
function markDropped(journal: Journal<OutboxRecord>, queue: LineQueue, count: number, newest: LogLine): void {
  const marker = queue.marker;
  const index = marker ? queue.entries.indexOf(marker.entry) : -1;
  // A marker being sent stays as it is; one still waiting is replaced by one with the new total.
  const replacing = marker !== null && index >= queue.sending;
  const total = count + (replacing ? marker.count : 0);
  if (replacing) journal.settle([marker.entry.id]);
  // The seq of the newest line dropped: after the older ones, before every line kept.
  const line: LogLine = {
    seq: newest.seq,
    at: newest.at,
    fd: "system",
    text: `[slipway] ${total} log line${total === 1 ? "" : "s"} dropped: the engine's outbox was full (SLIPWAY_ENGINE_OUTBOX_MB) while the control plane could not store them`,
  };
  const entry = { id: journal.append({ kind: "line", stream: queue.stream, line }), item: line };
  queue.entries.splice(replacing ? index : queue.sending, replacing ? 1 : 0, entry);
  queue.marker = { entry, count: total };
}

/**
 * Of the queues of streams of `kind`, the one whose next droppable line is oldest, and that line's
 * index: lines being sent and the drop marker are not droppable; `next` says where each queue's
 * search resumes.
 */
function oldestDroppable(queues: Iterable<LineQueue>, kind: LogStream["kind"], next: Map<LineQueue, number>) {
  let oldest: { queue: LineQueue; index: number } | null = null;
  for (const queue of queues) {
    if (queue.stream.kind !== kind) continue;
    let index = next.get(queue) ?? queue.sending;
    if (queue.entries[index] !== undefined && queue.entries[index] === queue.marker?.entry) index++;
    const line = queue.entries[index];
    if (line && (!oldest || line.id < oldest.queue.entries[oldest.index]!.id)) oldest = { queue, index };
  }
  return oldest;
}
