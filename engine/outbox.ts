import type { DeploymentEvent, LogLine, LogStream } from "./protocol/events";

/**
 * Events and log lines wait here until the control plane acknowledges them, so a dropped
 * connection only delays them. Lines are grouped by stream and sent in bounded batches; the
 * control plane stores each (stream, seq) once, so re-sending after a lost ack is harmless.
 */
type Send = (name: "deployment:event" | "log:batch", payload: unknown) => Promise<boolean>;

const MAX_LINES = 1000;
const MAX_EVENTS = 200;
/** Beyond this many waiting lines (a long disconnect), the oldest are dropped and counted. */
const MAX_BUFFERED_LINES = 200_000;

export class Outbox {
  private events = new Map<string, DeploymentEvent[]>();
  private logs = new Map<string, { stream: LogStream; lines: LogLine[] }>();
  private bufferedLines = 0;
  private flushing: Promise<void> | null = null;
  private again = false;
  droppedLines = 0;

  constructor(private readonly send: Send) {}

  pushEvent(deploymentId: string, event: DeploymentEvent) {
    const queue = this.events.get(deploymentId) ?? [];
    queue.push(event);
    this.events.set(deploymentId, queue);
  }

  pushLine(stream: LogStream, line: LogLine) {
    const key = stream.kind === "deployment" ? `d:${stream.deploymentId}` : `s:${stream.serviceId}`;
    const entry = this.logs.get(key) ?? { stream, lines: [] };
    entry.lines.push(line);
    this.logs.set(key, entry);
    if (++this.bufferedLines > MAX_BUFFERED_LINES) this.dropOldest();
  }

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
    this.flushing = this.drain().finally(() => {
      this.flushing = null;
      if (this.again) {
        this.again = false;
        void this.flush();
      }
    });
    return this.flushing;
  }

  private async drain() {
    for (const [deploymentId, queue] of this.events) {
      while (queue.length > 0) {
        const batch = queue.slice(0, MAX_EVENTS);
        if (!(await this.send("deployment:event", { deploymentId, events: batch }))) return;
        queue.splice(0, batch.length);
      }
      this.events.delete(deploymentId);
    }
    for (const [key, entry] of this.logs) {
      while (entry.lines.length > 0) {
        const batch = entry.lines.slice(0, MAX_LINES);
        if (!(await this.send("log:batch", { stream: entry.stream, lines: batch }))) return;
        entry.lines.splice(0, batch.length);
        this.bufferedLines -= batch.length;
      }
      this.logs.delete(key);
    }
  }

  private dropOldest() {
    for (const entry of this.logs.values()) {
      if (entry.lines.length > 0 && entry.stream.kind === "service") {
        entry.lines.shift();
        this.bufferedLines--;
        this.droppedLines++;
        return;
      }
    }
  }
}
