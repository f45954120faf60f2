import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { NUDGE_RETRY_MS, Outbox, type Delivery, type OutboxMessage, type OutboxOptions } from "./outbox";
import { createBackoff } from "./protocol/backoff";
import type { LogStream } from "./protocol/events";

const deploymentId = "6f1f0b8e-8d3c-4a43-9b53-0d9a0d7f0a01";
const serviceId = "0b0d5a4e-7f1c-4a59-8d5e-2f1b7e9c3d02";
const runtime: LogStream = { kind: "service", serviceId, releaseId: "r1" };
const build: LogStream = { kind: "deployment", deploymentId, serviceId };
const event = (seq: number) => ({ seq, serviceId: null, step: "deployment" as const, status: "started" as const, at: new Date(0).toISOString() });
const line = (seq: number, text = `line ${seq}`) => ({ seq, at: new Date(0).toISOString(), fd: "stdout" as const, text });

/** A control plane whose answers the test scripts; it records what it stored. */
function scriptedControlPlane(answers: Delivery[] | ((message: OutboxMessage) => Delivery)) {
  const stored: OutboxMessage[] = [];
  const sent: OutboxMessage[] = [];
  let next = 0;
  const waiters: Array<() => void> = [];
  return {
    stored,
    sent,
    send: async (message: OutboxMessage): Promise<Delivery> => {
      sent.push(message);
      const answer = typeof answers === "function" ? answers(message) : (answers[next++] ?? "delivered");
      if (answer === "delivered") stored.push(message);
      waiters.splice(0).forEach((wake) => wake());
      return answer;
    },
    /** Resolves once `count` batches were sent in all. */
    async sends(count: number) {
      while (sent.length < count) await new Promise<void>((resolve) => waiters.push(resolve));
    },
    /** The seqs of the events stored, and the texts of the lines stored, in the order they were stored. */
    eventSeqs: () => stored.flatMap((message) => (message.name === "deployment:event" ? message.payload.events.map((sent) => sent.seq) : [])),
    lineTexts: () => stored.flatMap((message) => (message.name === "log:batch" ? message.payload.lines.map((sent) => sent.text) : [])),
  };
}

/** Never stores anything: what the outbox holds stays in it. */
const unreachable = () => scriptedControlPlane(() => "retry");
const fast = () => createBackoff({ baseMs: 5, maxMs: 20, jitter: 0 });
/** Long enough that no retry happens during a test: it sends only when the test flushes. */
const patient = () => createBackoff({ baseMs: 60_000, maxMs: 60_000, jitter: 0 });

const dirs: string[] = [];
const opened: Outbox[] = [];
afterEach(() => {
  for (const outbox of opened.splice(0)) void outbox.close().catch(() => {});
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function outboxDir() {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "slipway-outbox-")), "outbox");
  dirs.push(path.dirname(dir));
  return dir;
}

function open(options: Partial<OutboxOptions> & Pick<OutboxOptions, "send" | "dir">) {
  const outbox = Outbox.open({ backoff: patient(), ...options });
  opened.push(outbox);
  return outbox;
}

const journalOf = (dir: string) => path.join(dir, "journal.jsonl");
/** The journal is written at the end of the turn of the event loop that queued its entries. */
const turnEnds = () => new Promise<void>((resolve) => setImmediate(resolve));
/**
 * Waits for a compaction in flight to land (its temporary file gone). It runs in the background,
 * and the bound assumes one lands before a sixteenth of the bound is appended: these loops append
 * far faster than a real engine, so they pace themselves.
 */
async function compactionLands(dir: string) {
  while (fs.existsSync(`${journalOf(dir)}.tmp`)) await new Promise((resolve) => setTimeout(resolve, 1));
}

describe("the engine's outbox", () => {
  it("says a line was stored only once the control plane stored it, so a runtime saves its read offset no further", async () => {
    const controlPlane = scriptedControlPlane(["retry", "delivered"]);
    const outbox = open({ dir: outboxDir(), send: controlPlane.send, backoff: fast() });
    const stored: number[] = [];
    outbox.pushLine(runtime, line(1), () => stored.push(1));
    outbox.pushLine(runtime, line(2), () => stored.push(2));
    await outbox.flush();
    expect(stored).toEqual([]);
    await controlPlane.sends(2);
    await outbox.flush();
    expect(stored).toEqual([1, 2]);
  });

  it("keeps a batch the control plane could not store, and sends it again until it is stored", async () => {
    const controlPlane = scriptedControlPlane(["retry", "retry", "delivered"]);
    const outbox = open({ dir: outboxDir(), send: controlPlane.send, backoff: fast() });
    outbox.pushEvent(deploymentId, event(1));
    await outbox.flush();
    expect(outbox.pending).toBe(1);
    await controlPlane.sends(3);
    await outbox.flush();
    expect(outbox.pending).toBe(0);
    expect(controlPlane.stored).toEqual([{ name: "deployment:event", payload: { deploymentId, events: [event(1)] } }]);
    expect(outbox.discardedBatches).toBe(0);
  });

  it("keeps a batch whose sending threw, as if the control plane had not answered", async () => {
    let calls = 0;
    const send = async (): Promise<Delivery> => {
      if (calls++ === 0) throw new Error("socket closed");
      return "delivered";
    };
    const outbox = open({ dir: outboxDir(), send });
    outbox.pushLine(runtime, line(1));
    await outbox.flush();
    expect(outbox.pending).toBe(1);
    await outbox.flush();
    expect(outbox.pending).toBe(0);
  });

  it("sends for new entries at once, but during an outage brings the retry forward at most once a second, however many come", async () => {
    const controlPlane = unreachable();
    const outbox = open({ dir: outboxDir(), send: controlPlane.send });
    outbox.pushLine(runtime, line(1));
    outbox.nudge();
    await controlPlane.sends(1);
    await outbox.flush();
    const afterFirst = controlPlane.sent.length;
    // A chatty service while the control plane cannot store: its lines wait with the rest.
    for (let seq = 2; seq <= 50; seq++) {
      outbox.pushLine(runtime, line(seq));
      outbox.nudge();
      await turnEnds();
    }
    expect(controlPlane.sent.length).toBe(afterFirst);
    await new Promise((resolve) => setTimeout(resolve, NUDGE_RETRY_MS));
    outbox.pushLine(runtime, line(51));
    outbox.nudge();
    await controlPlane.sends(afterFirst + 1);
    await turnEnds();
    expect(controlPlane.sent.length).toBe(afterFirst + 1);
    expect(outbox.pending).toBe(51);
    // The link coming back (flush) sends at once whatever the backoff says.
    await outbox.flush();
    expect(controlPlane.sent.length).toBe(afterFirst + 2);
  });

  it("forgets a batch the control plane refused for good, counts it, and goes on with the rest", async () => {
    const controlPlane = scriptedControlPlane(["discarded", "delivered"]);
    const outbox = open({ dir: outboxDir(), send: controlPlane.send });
    outbox.pushEvent(deploymentId, event(1));
    outbox.pushLine(runtime, line(2));
    await outbox.flush();
    expect(outbox.pending).toBe(0);
    expect(outbox.discardedBatches).toBe(1);
    expect(controlPlane.stored.map((message) => message.name)).toEqual(["log:batch"]);
  });

  it("sends events before lines, in order, in bounded batches", async () => {
    const controlPlane = scriptedControlPlane([]);
    const outbox = open({ dir: outboxDir(), send: controlPlane.send });
    for (let seq = 0; seq < 2500; seq++) outbox.pushLine(runtime, line(seq));
    outbox.pushEvent(deploymentId, event(9));
    await outbox.flush();
    expect(controlPlane.stored.map((message) => message.name)).toEqual(["deployment:event", "log:batch", "log:batch", "log:batch"]);
    expect(controlPlane.lineTexts()).toEqual([...Array(2500).keys()].map((seq) => `line ${seq}`));
  });

  it("keeps a batch of long lines under the size a message may have, so one batch cannot close the connection for ever", async () => {
    const controlPlane = scriptedControlPlane([]);
    const outbox = open({ dir: outboxDir(), send: controlPlane.send });
    // 16 KiB lines, the longest the protocol carries, of two-byte characters: 12 MiB of text in all.
    const long = (seq: number) => `${seq} ${"é".repeat(16_000)}`;
    for (let seq = 0; seq < 400; seq++) outbox.pushLine(runtime, line(seq, long(seq)));
    await outbox.flush();
    const sizes = controlPlane.stored.map((message) => Buffer.byteLength(JSON.stringify(message.payload)));
    expect(Math.max(...sizes)).toBeLessThan(1024 * 1024);
    expect(controlPlane.lineTexts()).toEqual([...Array(400).keys()].map(long));
    expect(outbox.pending).toBe(0);
  });

  it("shares one flush between concurrent callers and makes one more pass for what arrived meanwhile", async () => {
    const controlPlane = scriptedControlPlane([]);
    const outbox = open({ dir: outboxDir(), send: controlPlane.send });
    outbox.pushEvent(deploymentId, event(1));
    const first = outbox.flush();
    outbox.pushEvent(deploymentId, event(2));
    const second = outbox.flush();
    await Promise.all([first, second]);
    await outbox.flush();
    expect(controlPlane.eventSeqs()).toEqual([1, 2]);
  });
});

/** A control plane whose answers the test gives, batch by batch, in any order: batches stay in flight until then. */
function heldControlPlane() {
  const flights: Array<{ message: Extract<OutboxMessage, { name: "log:batch" }>; answer: (delivery: Delivery) => void }> = [];
  const waiters: Array<() => void> = [];
  return {
    flights,
    send: (message: OutboxMessage) =>
      new Promise<Delivery>((answer) => {
        if (message.name !== "log:batch") throw new Error(`unexpected ${message.name}`);
        flights.push({ message, answer });
        waiters.splice(0).forEach((wake) => wake());
      }),
    /** Resolves once `count` batches were sent in all. */
    async sent(count: number) {
      while (flights.length < count) await new Promise<void>((resolve) => waiters.push(resolve));
    },
    seqs: (index: number) => flights[index]!.message.payload.lines.map((sent) => sent.seq),
  };
}

describe("the outbox's batches in flight", () => {
  it("keeps three batches of a stream in flight, and settles them in order whatever order their answers come in", async () => {
    const controlPlane = heldControlPlane();
    const outbox = open({ dir: outboxDir(), send: controlPlane.send });
    const stored: number[] = [];
    for (let seq = 0; seq < 3500; seq++) outbox.pushLine(runtime, line(seq), () => stored.push(seq));
    void outbox.flush();
    await controlPlane.sent(3);
    await turnEnds();
    // Three at once, each after the one before; only the first was sent with nothing unanswered before it.
    expect(controlPlane.flights).toHaveLength(3);
    expect(controlPlane.flights.map((flight) => flight.message.payload.pipelined)).toEqual([undefined, true, true]);
    expect(controlPlane.seqs(1)[0]).toBe(1000);
    expect(controlPlane.seqs(2)[0]).toBe(2000);

    // The third stored first: nothing is settled before the first is, and no fourth leaves while three are unsettled.
    controlPlane.flights[2]!.answer("delivered");
    await turnEnds();
    expect(stored).toEqual([]);
    expect(controlPlane.flights).toHaveLength(3);
    controlPlane.flights[0]!.answer("delivered");
    await controlPlane.sent(4);
    expect(stored).toEqual([...Array(1000).keys()]);
    expect(controlPlane.seqs(3)).toEqual([...Array(500).keys()].map((index) => 3000 + index));
    controlPlane.flights[1]!.answer("delivered");
    controlPlane.flights[3]!.answer("delivered");
    await outbox.flush();
    expect(stored).toEqual([...Array(3500).keys()]);
    expect(outbox.pending).toBe(0);
  });

  it("sends a batch behind an unanswered one only once enough lines wait, so a busy stream is not cut into many small batches", async () => {
    const controlPlane = heldControlPlane();
    const outbox = open({ dir: outboxDir(), send: controlPlane.send });
    for (let seq = 0; seq < 10; seq++) outbox.pushLine(runtime, line(seq));
    void outbox.flush();
    await controlPlane.sent(1);
    for (let seq = 10; seq < 110; seq++) outbox.pushLine(runtime, line(seq));
    void outbox.flush();
    await turnEnds();
    expect(controlPlane.flights).toHaveLength(1);
    for (let seq = 110; seq < 400; seq++) outbox.pushLine(runtime, line(seq));
    void outbox.flush();
    await controlPlane.sent(2);
    expect(controlPlane.seqs(1)).toEqual([...Array(390).keys()].map((index) => 10 + index));
    // With nothing unanswered, what waits goes at once, however little.
    outbox.pushLine(runtime, line(400));
    void outbox.flush();
    controlPlane.flights[0]!.answer("delivered");
    await turnEnds();
    expect(controlPlane.flights).toHaveLength(2);
    controlPlane.flights[1]!.answer("delivered");
    await controlPlane.sent(3);
    expect(controlPlane.seqs(2)).toEqual([400]);
  });

  it("sends again from a batch answered retry, with every batch behind it, once all were answered; each line is settled once, in order", async () => {
    const controlPlane = heldControlPlane();
    const dir = outboxDir();
    const outbox = open({ dir, send: controlPlane.send, backoff: fast() });
    const stored: number[] = [];
    for (let seq = 0; seq < 3000; seq++) outbox.pushLine(runtime, line(seq), () => stored.push(seq));
    void outbox.flush();
    await controlPlane.sent(3);
    controlPlane.flights[1]!.answer("retry");
    controlPlane.flights[0]!.answer("delivered");
    // The third stored (as a control plane that stores out of order would have), but behind the one that was not.
    controlPlane.flights[2]!.answer("delivered");
    await controlPlane.sent(5);
    await turnEnds();
    expect(stored).toEqual([...Array(1000).keys()]);
    // Again from the failed one, which goes as the first of a new run.
    expect(controlPlane.seqs(3)[0]).toBe(1000);
    expect(controlPlane.flights[3]!.message.payload.pipelined).toBeUndefined();
    expect(controlPlane.seqs(4)[0]).toBe(2000);
    expect(controlPlane.flights[4]!.message.payload.pipelined).toBe(true);
    controlPlane.flights[4]!.answer("delivered");
    controlPlane.flights[3]!.answer("delivered");
    await outbox.flush();
    expect(stored).toEqual([...Array(3000).keys()]);
    expect(outbox.pending).toBe(0);
    // The journal holds nothing a restarted engine would send again.
    await turnEnds();
    expect(fs.statSync(journalOf(dir)).size).toBe(0);
  });
});

describe("the outbox's journal", () => {
  it("gives an engine started again what the killed one had not got stored, first and in order, before anything new", async () => {
    const dir = outboxDir();
    const before = open({ dir, send: unreachable().send });
    before.pushEvent(deploymentId, event(1));
    before.pushLine(build, line(2, "building"));
    before.pushLine(runtime, line(3, "serving"));
    before.pushEvent(deploymentId, event(4));
    await before.flush();
    // Killed: never closed, its entries only where the turn that queued them left them.
    await turnEnds();
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    expect(fs.statSync(journalOf(dir)).mode & 0o777).toBe(0o600);

    const controlPlane = scriptedControlPlane([]);
    const after = open({ dir, send: controlPlane.send });
    expect(after.replayed).toEqual({ events: 2, lines: 2, skipped: 0 });
    after.pushEvent(deploymentId, event(5));
    after.pushLine(runtime, line(6, "serving more"));
    await after.flush();
    expect(controlPlane.stored).toEqual([
      { name: "deployment:event", payload: { deploymentId, events: [event(1), event(4), event(5)] } },
      { name: "log:batch", payload: { stream: build, lines: [line(2, "building")] } },
      { name: "log:batch", payload: { stream: runtime, lines: [line(3, "serving"), line(6, "serving more")] } },
    ]);
  });

  it("skips a last record cut short by a kill mid-write, and appends after it on a clean line", async () => {
    const dir = outboxDir();
    const before = open({ dir, send: unreachable().send });
    before.pushEvent(deploymentId, event(1));
    before.pushLine(runtime, line(2));
    await turnEnds();
    const whole = fs.readFileSync(journalOf(dir), "utf8");
    // The engine died inside the write(2) of its next record, and a record before it was garbled.
    const torn = `{"i":3,"v":{"kind":"line","stream":{"kind":"service","serviceId":"${serviceId}","releaseId":"r1"},"line":{"seq":3,"at":"1970-01-01`;
    fs.writeFileSync(journalOf(dir), `${whole}not json at all\n${torn}`);

    const middle = open({ dir, send: unreachable().send });
    expect(middle.replayed).toEqual({ events: 1, lines: 1, skipped: 2 });
    middle.pushLine(runtime, line(4));
    await turnEnds();

    const controlPlane = scriptedControlPlane([]);
    const after = open({ dir, send: controlPlane.send });
    expect(after.replayed).toEqual({ events: 1, lines: 2, skipped: 0 });
    await after.flush();
    expect(controlPlane.eventSeqs()).toEqual([1]);
    expect(controlPlane.lineTexts()).toEqual(["line 2", "line 4"]);
  });

  it("forgets what was stored: empty once everything is, and a restart re-sends only what was not", async () => {
    const dir = outboxDir();
    const linesRefused = scriptedControlPlane((message) => (message.name === "log:batch" ? "retry" : "delivered"));
    const before = open({ dir, send: linesRefused.send });
    before.pushEvent(deploymentId, event(1));
    before.pushLine(runtime, line(2));
    await before.flush();
    await turnEnds();
    expect(linesRefused.eventSeqs()).toEqual([1]);

    const controlPlane = scriptedControlPlane([]);
    const after = open({ dir, send: controlPlane.send });
    expect(after.replayed).toEqual({ events: 0, lines: 1, skipped: 0 });
    await after.flush();
    expect(controlPlane.stored.map((message) => message.name)).toEqual(["log:batch"]);
    await turnEnds();
    expect(fs.statSync(journalOf(dir)).size).toBe(0);
  });

  it("rewrites itself once what was stored outweighs what waits, so it stays small while the control plane keeps up", async () => {
    const dir = outboxDir();
    // One line the control plane keeps refusing holds the journal open; the events go through.
    const controlPlane = scriptedControlPlane((message) => (message.name === "log:batch" ? "retry" : "delivered"));
    const outbox = open({ dir, send: controlPlane.send, maxBytes: 16 * 1024 });
    outbox.pushLine(runtime, line(0, "stuck"));
    let largest = 0;
    for (let seq = 1; seq <= 500; seq++) {
      outbox.pushEvent(deploymentId, event(seq));
      await outbox.flush();
      await turnEnds();
      largest = Math.max(largest, fs.statSync(journalOf(dir)).size);
      await compactionLands(dir);
    }
    expect(controlPlane.eventSeqs()).toHaveLength(500);
    expect(outbox.pending).toBe(1);
    // 500 events and their acknowledgements are ~100 kB written; what is on disk stays a few of them.
    expect(largest).toBeLessThan(2 * 1024);
    expect(fs.readFileSync(journalOf(dir), "utf8")).toContain('"text":"stuck"');
  });

  it("keeps within its bound on disk by dropping the oldest runtime lines, says so in one line, and never drops events or build output", async () => {
    const dir = outboxDir();
    const maxBytes = 32 * 1024;
    const outbox = open({ dir, send: unreachable().send, maxBytes });
    outbox.pushEvent(deploymentId, event(0));
    outbox.pushLine(build, line(1, "building"));
    let largest = 0;
    for (let seq = 2; seq < 1000; seq++) {
      outbox.pushLine(runtime, line(seq, `app line ${seq} ${"x".repeat(100)}`));
      if (seq % 50 === 0) outbox.pushEvent(deploymentId, event(seq));
      await turnEnds();
      largest = Math.max(largest, fs.statSync(journalOf(dir)).size);
      await compactionLands(dir);
    }
    expect(largest).toBeLessThanOrEqual(maxBytes);
    expect(outbox.droppedLines).toBeGreaterThan(500);

    // What a restarted engine sends: every event, the build line, one marker, then the newest runtime lines, each once.
    const controlPlane = scriptedControlPlane([]);
    const after = open({ dir, send: controlPlane.send, maxBytes });
    await after.flush();
    expect(controlPlane.eventSeqs()).toEqual([0, ...Array.from({ length: 19 }, (_, index) => (index + 1) * 50)]);
    const [building, marker, ...kept] = controlPlane.lineTexts();
    expect(building).toBe("building");
    expect(marker).toBe(
      `[slipway] ${outbox.droppedLines} log lines dropped: the engine's outbox was full (SLIPWAY_ENGINE_OUTBOX_MB) while the control plane could not store them`,
    );
    const seqs = kept.map((text) => Number(text.split(" ")[2]));
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, index) => 1000 - seqs.length + index));
    expect(seqs[0]).toBe(2 + outbox.droppedLines);
  });

  it("drops build output only when no runtime line is left to drop", async () => {
    const dir = outboxDir();
    const controlPlane = scriptedControlPlane([]);
    const outbox = open({ dir, send: unreachable().send, maxBytes: 8 * 1024 });
    for (let seq = 0; seq < 200; seq++) outbox.pushLine(build, line(seq, `build line ${seq} ${"x".repeat(100)}`));
    outbox.pushEvent(deploymentId, event(200));
    await turnEnds();
    expect(outbox.droppedLines).toBeGreaterThan(100);
    const after = open({ dir, send: controlPlane.send });
    await after.flush();
    expect(controlPlane.eventSeqs()).toEqual([200]);
    expect(controlPlane.lineTexts()[0]).toMatch(new RegExp(`^\\[slipway\\] ${outbox.droppedLines} log lines dropped`));
    expect(controlPlane.lineTexts().at(-1)).toMatch(/^build line 199 /);
  });
});
