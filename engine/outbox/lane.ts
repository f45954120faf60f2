/** What became of a batch: stored, refused for good, or to be sent again later. */
export type Delivery = "delivered" | "discarded" | "retry";

/** An entry waiting in the outbox: its id in the journal, what it carries, and whom to tell once it is stored. */
export type Queued<T> = { id: number; item: T; stored?: () => void };

/** A batch sent: how many entries of its lane's front it carries, and its answer once there is one. */
export type Flight = { count: number; answer: Delivery | null };

/**
 * The entries of one ordered stream (a deployment's events, a stream's log lines) waiting in the
 * outbox, oldest first, and the batches of them being sent. Batches leave in order and a few may
 * be in flight at once (issue 17, item 7: one at a time, each waited for the previous one's store
 * and acknowledgement); the first `sending` entries are theirs.
 */
export type Lane<T> = {
  entries: Array<Queued<T>>;
  /** How many entries at the front are in flight: shedding (outbox/bound.ts) leaves them alone. */
  sending: number;
  /** Batches sent and not yet settled, in the order they left. */
  flights: Flight[];
  /** A batch was answered `retry`: nothing more is sent until every batch in flight is answered, then all of them go again from that one. */
  stalled: boolean;
};

export const newLane = <T>(): Lane<T> => ({ entries: [], sending: 0, flights: [], stalled: false });

/** Marks the next batch, of `count` entries after those in flight, as sent; `pipelined` when batches before it are still unanswered. */
export function sendNext(lane: Lane<unknown>, count: number): { flight: Flight; pipelined: boolean } {
  const flight: Flight = { count, answer: null };
  const pipelined = lane.flights.length > 0;
  lane.flights.push(flight);
  lane.sending += count;
  return { flight, pipelined };
}

/**
 * Records a batch's answer and returns the entries now settled, in order: only from the front,
 * so an entry is settled once every entry before it is. An answer to a batch behind one not yet
 * answered waits for it; once a batch is answered `retry`, the batches behind it are not settled
 * whatever their answer (they are sent again with it, and the control plane stores a line once
 * per seq), and when the last of them is answered the lane starts over from the failed one.
 */
export function settleAnswered<T>(lane: Lane<T>, flight: Flight, answer: Delivery): Array<Queued<T>> {
  flight.answer = answer;
  if (answer === "retry") lane.stalled = true;
  const settled: Array<Queued<T>> = [];
  for (let front = lane.flights[0]; front?.answer && front.answer !== "retry"; front = lane.flights[0]) {
    lane.flights.shift();
    lane.sending -= front.count;
    settled.push(...lane.entries.splice(0, front.count));
  }
  if (lane.stalled && lane.flights.every((sent) => sent.answer !== null)) {
    lane.flights = [];
    lane.sending = 0;
  }
  return settled;
}
