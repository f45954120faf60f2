import { describe, expect, it } from "vitest";
import { Outbox, type Delivery, type OutboxMessage } from "./outbox";
import { createBackoff } from "./protocol/backoff";
import type { LogStream } from "./protocol/events";

const deploymentId = "6f1f0b8e-8d3c-4a43-9b53-0d9a0d7f0a01";
const serviceId = "0b0d5a4e-7f1c-4a59-8d5e-2f1b7e9c3d02";
const runtime: LogStream = { kind: "service", serviceId, releaseId: "r1" };
const event = (seq: number) => ({ seq, serviceId: null, step: "deployment" as const, status: "started" as const, at: new Date(0).toISOString() });
const line = (seq: number) => ({ seq, at: new Date(0).toISOString(), fd: "stdout" as const, text: `line ${seq}` });

/** A control plane whose answers the test scripts; it records what it stored. */
function scriptedControlPlane(answers: Delivery[]) {
  const stored: OutboxMessage[] = [];
  const sent: OutboxMessage[] = [];
  let next = 0;
  const waiters: Array<() => void> = [];
  return {
    stored,
    sent,
    send: async (message: OutboxMessage): Promise<Delivery> => {
      sent.push(message);
      const answer = answers[next++] ?? "delivered";
      if (answer === "delivered") stored.push(message);
      waiters.splice(0).forEach((wake) => wake());
      return answer;
    },
    /** Resolves once `count` batches were sent in all. */
    async sends(count: number) {
      while (sent.length < count) await new Promise<void>((resolve) => waiters.push(resolve));
    },
  };
}

const fast = () => createBackoff({ baseMs: 5, maxMs: 20, jitter: 0 });

describe("the engine's outbox", () => {
  it("says a line was stored only once the control plane stored it, so a runtime saves its read offset no further", async () => {
    const controlPlane = scriptedControlPlane(["retry", "delivered"]);
    const outbox = new Outbox({ send: controlPlane.send, backoff: fast() });
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
    const outbox = new Outbox({ send: controlPlane.send, backoff: fast() });
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
    const outbox = new Outbox({
      send: async () => {
        if (calls++ === 0) throw new Error("socket closed");
        return "delivered";
      },
      backoff: fast(),
    });
    outbox.pushLine(runtime, line(1));
    await outbox.flush();
    expect(outbox.pending).toBe(1);
    await outbox.flush();
    expect(outbox.pending).toBe(0);
  });

  it("forgets a batch the control plane refused for good, counts it, and goes on with the rest", async () => {
    const controlPlane = scriptedControlPlane(["discarded", "delivered"]);
    const outbox = new Outbox({ send: controlPlane.send, backoff: fast() });
    outbox.pushEvent(deploymentId, event(1));
    outbox.pushLine(runtime, line(2));
    await outbox.flush();
    expect(outbox.pending).toBe(0);
    expect(outbox.discardedBatches).toBe(1);
    expect(controlPlane.stored.map((message) => message.name)).toEqual(["log:batch"]);
  });

  it("sends events before lines, in order, in bounded batches", async () => {
    const controlPlane = scriptedControlPlane([]);
    const outbox = new Outbox({ send: controlPlane.send });
    for (let seq = 0; seq < 2500; seq++) outbox.pushLine(runtime, line(seq));
    outbox.pushEvent(deploymentId, event(9));
    await outbox.flush();
    expect(controlPlane.stored.map((message) => message.name)).toEqual(["deployment:event", "log:batch", "log:batch", "log:batch"]);
    const seqs = controlPlane.stored.flatMap((message) => (message.name === "log:batch" ? message.payload.lines.map((sent) => sent.seq) : []));
    expect(seqs).toEqual([...Array(2500).keys()]);
  });

  it("drops the oldest runtime lines beyond its bound, counting them, and never a deployment's lines", async () => {
    const controlPlane = scriptedControlPlane(["retry"]);
    const outbox = new Outbox({ send: controlPlane.send, backoff: fast(), maxBufferedLines: 3 });
    const build: LogStream = { kind: "deployment", deploymentId, serviceId };
    outbox.pushLine(build, line(0));
    for (let seq = 1; seq <= 4; seq++) outbox.pushLine(runtime, line(seq));
    expect(outbox.droppedLines).toBe(2);
    await outbox.flush();
    await controlPlane.sends(3);
    await outbox.flush();
    const kept = controlPlane.stored.flatMap((message) => (message.name === "log:batch" ? message.payload.lines.map((sent) => sent.seq) : []));
    expect(kept).toEqual([0, 3, 4]);
  });

  it("shares one flush between concurrent callers and makes one more pass for what arrived meanwhile", async () => {
    const controlPlane = scriptedControlPlane([]);
    const outbox = new Outbox({ send: controlPlane.send });
    outbox.pushEvent(deploymentId, event(1));
    const first = outbox.flush();
    outbox.pushEvent(deploymentId, event(2));
    const second = outbox.flush();
    await Promise.all([first, second]);
    await outbox.flush();
    expect(controlPlane.stored.flatMap((message) => (message.name === "deployment:event" ? message.payload.events.map((sent) => sent.seq) : []))).toEqual([
      1, 2,
    ]);
  });
});
