import type { DeploymentEvent, LogLine, LogStream } from "./protocol/events";
import { createBackoff, type Backoff } from "./protocol/backoff";
import type { EnginePayload } from "./protocol/messages";

/**
 * Events and log lines wait here until the control plane has stored them, so a dropped
 * connection or a control plane that cannot write (its database restarting) only delays them.
 * Lines are grouped by stream and sent in bounded batches; the control plane stores each
 * (stream, seq) once, so re-sending after a lost acknowledgement is harmless.
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
  send: (message: OutboxMessage) => Promise<Delivery>;
  /** Waits between retries; 0.5 s doubling up to 15 s by default. */
  backoff?: Backoff;
  /** Beyond this many waiting lines (a long disconnect), the oldest runtime lines are dropped and counted. */
  maxBufferedLines?: number;
};

const MAX_LINES = 1000;
const MAX_EVENTS = 200;

export class Outbox {
  private readonly events = new Map<string, DeploymentEvent[]>();
  private readonly logs = new Map<string, { stream: LogStream; lines: LogLine[]; stored: Array<(() => void) | undefined> }>();
  private readonly backoff: Backoff;
  private readonly maxBufferedLines: number;
  private bufferedLines = 0;
  private flushing: Promise<void> | null = null;
  private again = false;
  private retryTimer: NodeJS.Timeout | null = null;
  /** Runtime lines dropped because the outbox was full. */
  droppedLines = 0;
  /** Batches the control plane refused for good. */
  discardedBatches = 0;

  constructor(private readonly options: OutboxOptions) {
    this.backoff = options.backoff ?? createBackoff({ baseMs: 500, maxMs: 15_000 });
    this.maxBufferedLines = options.maxBufferedLines ?? 200_000;
  }

  pushEvent(deploymentId: string, event: DeploymentEvent) {
    const queue = this.events.get(deploymentId) ?? [];
    queue.push(event);
    this.events.set(deploymentId, queue);
  }

  /** Queues a line; `stored` is called once the control plane stored it or refused it for good (not for a line dropped when the outbox is full). */
  pushLine(stream: LogStream, line: LogLine, stored?: () => void) {
    const key = stream.kind === "deployment" ? `d:${stream.deploymentId}` : `s:${stream.serviceId}`;
    const entry = this.logs.get(key) ?? { stream, lines: [], stored: [] };
    entry.lines.push(line);
    entry.stored.push(stored);
    this.logs.set(key, entry);
    if (++this.bufferedLines > this.maxBufferedLines) this.dropOldest();
  }

  /** Events and lines not yet stored. */
  get pending(): number {
    let count = this.bufferedLines;
    for (const queue of this.events.values()) count += queue.length;
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

  /** Stops the retry timer (the engine is shutting down); what waits stays in memory. */
  close(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private async drain(): Promise<void> {
    for (const [deploymentId, queue] of this.events) {
      while (queue.length > 0) {
        const batch = queue.slice(0, MAX_EVENTS);
        if (!(await this.deliver({ name: "deployment:event", payload: { deploymentId, events: batch } }))) return;
        queue.splice(0, batch.length);
      }
      this.events.delete(deploymentId);
    }
    for (const [key, entry] of this.logs) {
      while (entry.lines.length > 0) {
        const batch = entry.lines.slice(0, MAX_LINES);
        if (!(await this.deliver({ name: "log:batch", payload: { stream: entry.stream, lines: batch } }))) return;
        entry.lines.splice(0, batch.length);
        for (const stored of entry.stored.splice(0, batch.length)) stored?.();
        this.bufferedLines -= batch.length;
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

  private dropOldest() {
    for (const entry of this.logs.values()) {
      if (entry.lines.length > 0 && entry.stream.kind === "service") {
        entry.lines.shift();
        entry.stored.shift();
        this.bufferedLines--;
        this.droppedLines++;
        return;
      }
    }
  }
}
