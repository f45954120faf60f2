import { keepWithinBound, type LineQueue } from "./outbox/bound";
import { Journal, readJournal } from "./outbox/journal";
import { newLane, sendNext, settleAnswered, type Delivery, type Lane, type Queued } from "./outbox/lane";
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
 *
 * Streams are sent side by side, each in order. A stream of lines may have a few batches in
 * flight (issue 17, item 7: with one, a batch waited for the previous one's store and
 * acknowledgement, and 10k lines/s queued behind that round trip); those sent behind an
 * unanswered one say so (`pipelined`), and the control plane stores them only if the one before
 * was stored, so a stream's lines are stored in seq order (server/realtime/log-batch-order.ts).
 * A batch answered `retry` is sent again with every batch that followed it.
 */
export type OutboxMessage =
  { name: "deployment:event"; payload: EnginePayload<"deployment:event"> } | { name: "log:batch"; payload: EnginePayload<"log:batch"> };

export type { Delivery };

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
/** Batches of one stream's lines in flight at once: enough to cover the store-and-acknowledge round trip at 10k lines/s. */
const MAX_LINE_BATCHES_IN_FLIGHT = 3;
/**
 * The fewest lines a batch sent behind an unanswered one carries (unless a full batch's text is
 * less): each batch costs the control plane a store, a broadcast and an acknowledgement, and a
 * stream cut in small batches as soon as a slot frees stores fewer lines a second on a busy host
 * than one batch at a time did. Fewer lines wait for the batch in flight, as before.
 */
const MIN_PIPELINED_LINES = 250;
/**
 * The text a batch of lines carries at most (UTF-8 bytes): a message over the web process's
 * 4 MiB limit (maxHttpBufferSize) closes the connection, and the same batch sent again would
 * close it again, for ever. A thousand lines of 16 KiB would be 16 MiB; with JSON escaping at
 * worst six bytes for one, 512 KiB of text stays under the limit. A longer line goes alone.
 */
const MAX_BATCH_TEXT_BYTES = 512 * 1024;

/**
 * How many of a stream's lines from `from` on make its next batch: at most {@link MAX_LINES}, and
 * {@link MAX_BATCH_TEXT_BYTES} of text; none yet when it would go behind an unanswered batch with
 * fewer than {@link MIN_PIPELINED_LINES}.
 */
function nextLineBatch(lines: Array<Queued<LogLine>>, from: number, pipelined: boolean): number {
  let bytes = 0;
  let count = 0;
  for (; count < Math.min(lines.length - from, MAX_LINES); count++) {
    bytes += Buffer.byteLength(lines[from + count]!.item.text);
    if (count > 0 && bytes > MAX_BATCH_TEXT_BYTES) return count;
  }
  return pipelined && count < MIN_PIPELINED_LINES ? 0 : count;
}

/** How many of a deployment's events from `from` on make its next batch. */
const nextEventBatch = (events: Array<Queued<DeploymentEvent>>, from: number) => Math.min(events.length - from, MAX_EVENTS);

/** What an outbox's journal holds, read without changing it: a stopped engine's unacknowledged events and lines, in order. */
export function readOutboxJournal(dir: string): OutboxRecord[] {
  return readJournal(dir, parseRecord).entries.map((entry) => entry.value);
}

/** How often new entries may bring a scheduled retry forward (see Outbox.nudge). */
export const NUDGE_RETRY_MS = 1_000;

export class Outbox {
  private readonly events = new Map<string, Lane<DeploymentEvent>>();
  private readonly logs = new Map<string, LineQueue>();
  private readonly journal: Journal<OutboxRecord>;
  private readonly backoff: Backoff;
  private readonly maxBytes: number;
  private retryTimer: NodeJS.Timeout | null = null;
  /** When a batch was last answered `retry` (or its sending threw). */
  private lastRefusedAt = -Infinity;
  private pumpQueued = false;
  /** Batches sent and not answered yet, of every lane. */
  private flying = 0;
  private closed = false;
  private idle: { promise: Promise<void>; resolve: () => void } | null = null;
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
      if (value.kind === "event") this.eventLane(value.deploymentId).entries.push({ id, item: value.event });
      else this.lineQueue(value.stream).entries.push({ id, item: value.line });
    }
    // A drop marker rewritten after the lines behind it has a later id; seq gives each stream its order back.
    for (const queue of this.logs.values()) queue.entries.sort((a, b) => a.item.seq - b.item.seq);
    const lines = entries.filter((entry) => entry.value.kind === "line").length;
    this.replayed = { events: entries.length - lines, lines, skipped };
  }

  pushEvent(deploymentId: string, event: DeploymentEvent) {
    const id = this.journal.append({ kind: "event", deploymentId, event });
    this.eventLane(deploymentId).entries.push({ id, item: event });
    this.droppedLines += keepWithinBound(this.journal, this.logs, this.maxBytes);
  }

  /** Queues a line; `stored` is called once the control plane stored it or refused it for good (not for a line dropped when the outbox is full). */
  pushLine(stream: LogStream, line: LogLine, stored?: () => void) {
    const id = this.journal.append({ kind: "line", stream, line });
    this.lineQueue(stream).entries.push({ id, item: line, stored });
    this.droppedLines += keepWithinBound(this.journal, this.logs, this.maxBytes);
  }

  /** Events and lines not yet stored. */
  get pending(): number {
    let count = 0;
    for (const lane of this.events.values()) count += lane.entries.length;
    for (const queue of this.logs.values()) count += queue.entries.length;
    return count;
  }

  /**
   * Sends what waits, at once even while a retry is scheduled (the link is back; a new entry
   * nudges instead). Resolves once nothing is in flight and nothing more can be sent now: everything was
   * answered, or what is left waits for a retry.
   */
  flush(): Promise<void> {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.schedulePump();
    return this.whenIdle();
  }

  /**
   * Sends what waits at the end of this turn, for a new entry. While a retry is scheduled, at
   * most once per NUDGE_RETRY_MS: a service logging a line at a time during an outage (the
   * control plane up, its database not) would otherwise send every waiting batch with each line,
   * and the backoff would never apply. Once the control plane stores again, what waits goes
   * within that time rather than at the end of a backoff that grew during the outage.
   */
  nudge(): void {
    if (!this.retryTimer) return this.schedulePump();
    if (Date.now() - this.lastRefusedAt >= NUDGE_RETRY_MS) void this.flush();
  }

  /** Stops the retry timer and closes the journal (the engine is shutting down): what waits is on disk for the next engine. */
  async close(): Promise<void> {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.closed = true;
    this.checkIdle();
    await this.journal.close();
  }

  private eventLane(deploymentId: string) {
    let lane = this.events.get(deploymentId);
    if (!lane) this.events.set(deploymentId, (lane = newLane()));
    return lane;
  }

  private lineQueue(stream: LogStream) {
    const key = stream.kind === "deployment" ? `d:${stream.deploymentId}` : `s:${stream.serviceId}`;
    let queue = this.logs.get(key);
    if (!queue) this.logs.set(key, (queue = { ...newLane<LogLine>(), stream, marker: null }));
    return queue;
  }

  /**
   * Sends at the end of the current turn, so the lines queued in one turn (a chunk the runtime
   * read) leave in one batch rather than the first alone.
   */
  private schedulePump(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    queueMicrotask(() => {
      this.pumpQueued = false;
      this.pump();
    });
  }

  /** Sends the next batches of every lane, as many as each may have in flight; none while a retry waits. */
  private pump(): void {
    if (!this.retryTimer && !this.closed) {
      for (const [deploymentId, lane] of this.events)
        this.fill(
          lane,
          1,
          nextEventBatch,
          (events) => ({ name: "deployment:event", payload: { deploymentId, events } }),
          () => this.forget(this.events, deploymentId, lane),
        );
      for (const [key, queue] of this.logs)
        this.fill(
          queue,
          MAX_LINE_BATCHES_IN_FLIGHT,
          nextLineBatch,
          (lines, pipelined) => ({ name: "log:batch", payload: { stream: queue.stream, lines, ...(pipelined ? { pipelined } : {}) } }),
          () => this.forget(this.logs, key, queue),
          (settled) => {
            if (queue.marker && settled.includes(queue.marker.entry)) queue.marker = null;
          },
        );
    }
    this.checkIdle();
  }

  /** Sends batches of a lane until `maxInFlight` are in flight or nothing is left; a stalled lane only once all its batches were answered. */
  private fill<T>(
    lane: Lane<T>,
    maxInFlight: number,
    take: (entries: Array<Queued<T>>, from: number, pipelined: boolean) => number,
    message: (items: T[], pipelined: boolean) => OutboxMessage,
    forget: () => void,
    onSettled?: (settled: Array<Queued<T>>) => void,
  ): void {
    if (lane.stalled) {
      if (lane.flights.length > 0) return;
      lane.stalled = false;
    }
    while (lane.flights.length < maxInFlight && lane.sending < lane.entries.length) {
      const count = take(lane.entries, lane.sending, lane.flights.length > 0);
      if (count === 0) return;
      const batch = lane.entries.slice(lane.sending, lane.sending + count);
      const { flight, pipelined } = sendNext(lane, batch.length);
      this.flying++;
      void this.attempt(
        message(
          batch.map((queued) => queued.item),
          pipelined,
        ),
      ).then((delivery) => {
        this.flying--;
        this.answered(delivery);
        const settled = settleAnswered(lane, flight, delivery);
        if (settled.length > 0) {
          this.journal.settle(settled.map((queued) => queued.id));
          onSettled?.(settled);
          for (const queued of settled) queued.stored?.();
        }
        if (lane.entries.length === 0 && lane.flights.length === 0) forget();
        this.schedulePump();
      });
    }
  }

  private async attempt(message: OutboxMessage): Promise<Delivery> {
    try {
      return await this.options.send(message);
    } catch {
      return "retry";
    }
  }

  private answered(delivery: Delivery): void {
    if (delivery === "retry") {
      this.lastRefusedAt = Date.now();
      return this.scheduleRetry();
    }
    if (delivery === "discarded") this.discardedBatches++;
    this.backoff.reset();
  }

  /** Drops an emptied lane from its map, unless a new one took its key meanwhile. */
  private forget<T>(lanes: Map<string, T>, key: string, lane: T): void {
    if (lanes.get(key) === lane) lanes.delete(key);
  }

  private whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    if (!this.idle) {
      let resolve = () => {};
      const promise = new Promise<void>((done) => (resolve = done));
      this.idle = { promise, resolve };
    }
    return this.idle.promise;
  }

  /** Nothing in flight, and nothing that may be sent now: all answered, or waiting for a retry. */
  private isIdle(): boolean {
    if (this.closed) return true;
    return !this.pumpQueued && this.flying === 0 && (this.retryTimer !== null || this.pending === 0);
  }

  private checkIdle(): void {
    if (!this.idle || !this.isIdle()) return;
    const { resolve } = this.idle;
    this.idle = null;
    resolve();
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.flush();
    }, this.backoff.next());
    this.retryTimer.unref();
  }
}
