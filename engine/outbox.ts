import { keepWithinBound, type LineQueue, type Queued } from "./outbox/bound";
import { Journal, readJournal } from "./outbox/journal";
import { parseRecord, type OutboxRecord } from "./outbox/records";
import { createBackoff, type Backoff } from "./protocol/backoff";
import type { DeploymentEvent, LogLine, LogStream } from "./protocol/events";
import type { EnginePayload } from "./protocol/messages";

/**
 * Events and log lines wait here until the control plane has stored them, so a dropped
 * connection, a control plane that cannot write (its database restarting) or the engine itself
 * being killed only delays them (issue 12: "an engine never drops an unacknowledged batch").
 *
 * Each event and line is appended to a journal in the engine's home (engine/outbox/journal.ts)
 * as it is queued, and settled there once the control plane answered for it; an engine started
 * again sends what the journal still holds first, in order, before anything new. Lines are
 * grouped by stream and sent in bounded batches; the control plane stores each event once per
 * (deployment, seq) and each line once per (stream, seq) and (stream, source), so re-sending a
 * batch whose acknowledgement was lost, or one replayed after a restart, is harmless.
 *
 * A batch leaves the outbox only when the sender says it was stored, or that it never can be
 * (`discarded`: its deployment no longer exists). Otherwise the outbox keeps it and tries again
 * with backoff, oldest first.
 */
export type OutboxMessage =
  { name: "deployment:event"; payload: EnginePayload<"deployment:event"> } | { name: "log:batch"; payload: EnginePayload<"log:batch"> };

/** What became of a batch: stored, refused for good, or to be sent again later. */
export type Delivery = "delivered" | "discarded" | "retry";

export type OutboxOptions = {
  /** Where the journal lives: the outbox's folder in the engine's home (engine/engine-files.ts). */
  dir: string;
  send: (message: OutboxMessage) => Promise<Delivery>;
  /** Waits between retries; 0.5 s doubling up to 15 s by default. */
  backoff?: Backoff;
  /** The journal's bound on disk (SLIPWAY_ENGINE_OUTBOX_MB): beyond it the oldest log lines are dropped, never events. */
  maxBytes?: number;
  /** The journal could not be written: what waits is kept in memory meanwhile. */
  onJournalError?: (error: Error) => void;
};

export const DEFAULT_OUTBOX_BYTES = 64 * 1024 * 1024;
const MAX_LINES = 1000;
const MAX_EVENTS = 200;
/**
 * The text a batch of lines carries at most (UTF-8 bytes): a message over the web process's
 * 4 MiB limit (maxHttpBufferSize) closes the connection, and the same batch sent again would
 * close it again, for ever. A thousand lines of 16 KiB would be 16 MiB; with JSON escaping at
 * worst six bytes for one, 512 KiB of text stays under the limit. A longer line goes alone.
 */
const MAX_BATCH_TEXT_BYTES = 512 * 1024;

/** The first lines of a stream's queue that make one batch: at most {@link MAX_LINES}, and {@link MAX_BATCH_TEXT_BYTES} of text. */
function firstBatch(lines: Array<Queued<LogLine>>): Array<Queued<LogLine>> {
  let bytes = 0;
  let count = 0;
  for (; count < Math.min(lines.length, MAX_LINES); count++) {
    bytes += Buffer.byteLength(lines[count]!.item.text);
    if (count > 0 && bytes > MAX_BATCH_TEXT_BYTES) break;
  }
  return lines.slice(0, count);
}

/** What an outbox's journal holds, read without changing it: a stopped engine's unacknowledged events and lines, in order. */
export function readOutboxJournal(dir: string): OutboxRecord[] {
  return readJournal(dir, parseRecord).entries.map((entry) => entry.value);
}

export class Outbox {
  private readonly events = new Map<string, Array<Queued<DeploymentEvent>>>();
  private readonly logs = new Map<string, LineQueue>();
  private readonly journal: Journal<OutboxRecord>;
  private readonly backoff: Backoff;
  private readonly maxBytes: number;
  private flushing: Promise<void> | null = null;
  private again = false;
  private retryTimer: NodeJS.Timeout | null = null;
  /** Log lines dropped because the outbox was full. */
  droppedLines = 0;
  /** Batches the control plane refused for good. */
  discardedBatches = 0;
  /** What the journal held when the outbox opened (a previous engine's unacknowledged entries), and the records it could not read. */
  readonly replayed: { events: number; lines: number; skipped: number };

  /** Opens the journal in `options.dir` and queues what it holds, to be sent before anything new. */
  static open(options: OutboxOptions): Outbox {
    return new Outbox(options);
  }

  private constructor(private readonly options: OutboxOptions) {
    this.backoff = options.backoff ?? createBackoff({ baseMs: 500, maxMs: 15_000 });
    this.maxBytes = options.maxBytes ?? DEFAULT_OUTBOX_BYTES;
    const { journal, entries, skipped } = Journal.open({
      dir: options.dir,
      maxBytes: this.maxBytes,
      parse: parseRecord,
      onError: options.onJournalError,
    });
    this.journal = journal;
    for (const { id, value } of entries) {
      if (value.kind === "event") this.eventQueue(value.deploymentId).push({ id, item: value.event });
      else this.lineQueue(value.stream).lines.push({ id, item: value.line });
    }
    // A drop marker rewritten after the lines behind it has a later id; seq gives each stream its order back.
    for (const queue of this.logs.values()) queue.lines.sort((a, b) => a.item.seq - b.item.seq);
    const lines = entries.filter((entry) => entry.value.kind === "line").length;
    this.replayed = { events: entries.length - lines, lines, skipped };
  }

  pushEvent(deploymentId: string, event: DeploymentEvent) {
    const id = this.journal.append({ kind: "event", deploymentId, event });
    this.eventQueue(deploymentId).push({ id, item: event });
    this.droppedLines += keepWithinBound(this.journal, this.logs, this.maxBytes);
  }

  /** Queues a line; `stored` is called once the control plane stored it or refused it for good (not for a line dropped when the outbox is full). */
  pushLine(stream: LogStream, line: LogLine, stored?: () => void) {
    const id = this.journal.append({ kind: "line", stream, line });
    this.lineQueue(stream).lines.push({ id, item: line, stored });
    this.droppedLines += keepWithinBound(this.journal, this.logs, this.maxBytes);
  }

  /** Events and lines not yet stored. */
  get pending(): number {
    let count = 0;
    for (const queue of this.events.values()) count += queue.length;
    for (const queue of this.logs.values()) count += queue.lines.length;
    return count;
  }

  /** Sends everything waiting; concurrent calls share one flush and trigger one more pass. */
  flush(): Promise<void> {
    if (this.flushing) {
      this.again = true;
      return this.flushing;
    }
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.flushing = this.drain().finally(() => {
      this.flushing = null;
      if (this.again) {
        this.again = false;
        void this.flush();
      }
    });
    return this.flushing;
  }

  /** Stops the retry timer and closes the journal (the engine is shutting down): what waits is on disk for the next engine. */
  async close(): Promise<void> {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    await this.journal.close();
  }

  private eventQueue(deploymentId: string) {
    let queue = this.events.get(deploymentId);
    if (!queue) this.events.set(deploymentId, (queue = []));
    return queue;
  }

  private lineQueue(stream: LogStream) {
    const key = stream.kind === "deployment" ? `d:${stream.deploymentId}` : `s:${stream.serviceId}`;
    let queue = this.logs.get(key);
    if (!queue) this.logs.set(key, (queue = { stream, lines: [], sending: 0, marker: null }));
    return queue;
  }

  private async drain(): Promise<void> {
    for (const [deploymentId, queue] of this.events) {
      while (queue.length > 0) {
        const batch = queue.slice(0, MAX_EVENTS);
        if (!(await this.deliver({ name: "deployment:event", payload: { deploymentId, events: batch.map((queued) => queued.item) } }))) return;
        queue.splice(0, batch.length);
        this.journal.settle(batch.map((queued) => queued.id));
      }
      this.events.delete(deploymentId);
    }
    for (const [key, queue] of this.logs) {
      while (queue.lines.length > 0) {
        const batch = firstBatch(queue.lines);
        queue.sending = batch.length;
        const delivered = await this.deliver({ name: "log:batch", payload: { stream: queue.stream, lines: batch.map((queued) => queued.item) } });
        queue.sending = 0;
        if (!delivered) return;
        queue.lines.splice(0, batch.length);
        if (queue.marker && batch.includes(queue.marker.entry)) queue.marker = null;
        this.journal.settle(batch.map((queued) => queued.id));
        for (const queued of batch) queued.stored?.();
      }
      this.logs.delete(key);
    }
  }

  /** True when the batch may leave the outbox; false (and a retry scheduled) when it must wait. */
  private async deliver(message: OutboxMessage): Promise<boolean> {
    const delivery = await this.options.send(message).catch((): Delivery => "retry");
    if (delivery === "retry") {
      this.scheduleRetry();
      return false;
    }
    if (delivery === "discarded") this.discardedBatches++;
    this.backoff.reset();
    return true;
  }

  private scheduleRetry(): void {
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.flush();
    }, this.backoff.next());
    this.retryTimer.unref();
  }
}
