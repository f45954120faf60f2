import type { Readable } from "node:stream";
import type Docker from "dockerode";
import { z } from "zod";
import { demultiplex, type Fd, lineSplitter } from "./streams";

/**
 * Where a container's log was last read: the timestamp of the last reported line, exactly as the
 * Engine API gave it, and how many lines with that same timestamp were reported. Docker stamps
 * lines in nanoseconds, Podman's compatible API (4.x) only in seconds: counting lines that share
 * a timestamp is what makes a resumed follow repeat nothing either way.
 */
export const logCursor = z.object({ ts: z.string(), count: z.number().int().nonnegative() });
export type LogCursor = z.infer<typeof logCursor>;

const TIMESTAMP = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/;

/** Nanoseconds since the epoch of an RFC 3339 timestamp (any fraction length), or null. */
export function timestampNs(ts: string): bigint | null {
  const match = TIMESTAMP.exec(ts);
  if (!match) return null;
  const ms = Date.parse(`${match[1]}${match[3]}`);
  if (Number.isNaN(ms)) return null;
  return BigInt(ms) * 1_000_000n + BigInt((match[2] ?? "").padEnd(9, "0").slice(0, 9));
}

/**
 * Follows one container's log (GET /containers/{id}/logs?follow=1&timestamps=1) from a cursor.
 * The Engine API ends the stream when the container stops (a restart policy's restart too); the
 * runtime's supervisor starts a new follower from the saved cursor then.
 */
export class ContainerLogFollower {
  private stream: Readable | null = null;
  private stopped = false;
  private cursor: LogCursor | null;
  private cursorNs: bigint | null;
  /** Lines at the resume timestamp seen again in this follow, to skip the `count` already reported. */
  private replayed = 0;
  private readonly resumeFrom: { ns: bigint; count: number } | null;
  readonly ended: Promise<void>;
  private markEnded!: () => void;
  done = false;

  constructor(
    private readonly docker: Docker,
    readonly containerId: string,
    from: LogCursor | null,
    private readonly onLine: (fd: Fd, text: string, at: string) => void,
    private readonly onCursor: (cursor: LogCursor) => void,
  ) {
    this.cursor = from;
    this.cursorNs = from ? timestampNs(from.ts) : null;
    this.resumeFrom = from && this.cursorNs !== null ? { ns: this.cursorNs, count: from.count } : null;
    this.ended = new Promise((resolve) => (this.markEnded = resolve));
  }

  async start(): Promise<void> {
    // `since` is in whole seconds and its bound is inclusive on Docker, exclusive on Podman: start a
    // second early and drop what the cursor says was reported.
    const since = this.resumeFrom ? Number(this.resumeFrom.ns / 1_000_000_000n) - 1 : 0;
    try {
      const stream = (await this.docker
        .getContainer(this.containerId)
        .logs({ follow: true, stdout: true, stderr: true, timestamps: true, since })) as unknown as Readable;
      if (this.stopped) {
        stream.destroy();
        return this.finish();
      }
      this.stream = stream;
      const lines = lineSplitter((fd, line) => this.line(fd, line));
      demultiplex(stream, (fd, payload) => lines.push(fd, payload));
      stream.once("end", () => {
        lines.flush();
        this.finish();
      });
      stream.once("close", () => this.finish());
      stream.once("error", () => this.finish());
    } catch {
      this.finish();
    }
  }

  /** Stops following; lines already received have been handed over. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stream?.destroy();
    this.finish();
    await this.ended;
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.markEnded();
  }

  private line(fd: Fd, raw: string): void {
    const space = raw.indexOf(" ");
    const ts = space > 0 ? raw.slice(0, space) : raw;
    const ns = timestampNs(ts);
    if (ns === null) return this.onLine(fd, raw, new Date().toISOString());
    const text = space > 0 ? raw.slice(space + 1) : "";
    if (this.resumeFrom) {
      if (ns < this.resumeFrom.ns) return;
      if (ns === this.resumeFrom.ns && this.replayed < this.resumeFrom.count) {
        this.replayed += 1;
        return;
      }
    }
    this.cursor = this.cursor && this.cursorNs === ns ? { ts: this.cursor.ts, count: this.cursor.count + 1 } : { ts, count: 1 };
    this.cursorNs = ns;
    this.onLine(fd, text, new Date(Number(ns / 1_000_000n)).toISOString());
    this.onCursor(this.cursor);
  }
}
