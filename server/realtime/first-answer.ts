import type { Namespace } from "socket.io";
import { PacketType } from "socket.io-parser";

type Answers<T> = {
  /** The first answer `accept` took, if any came in time. */
  accepted?: T;
  /** Every answer received until then. */
  answers: unknown[];
};

/**
 * Emits `event` to the sockets of `room` on every web process and settles at the first answer
 * that `accept` takes; failing that, once every process counted its sockets and each of them
 * answered, or at the timeout with the answers that came.
 *
 * socket.io's emitWithAck settles only when every process the adapter counts has answered, and a
 * process killed without a goodbye stays counted until its heartbeats time out: a request the
 * engine had already accepted waited out the whole timeout, then failed as unanswered.
 */
export function firstAcceptedAnswer<T>(
  nsp: Namespace,
  room: string,
  event: string,
  payload: unknown,
  options: { timeoutMs: number; accept: (answer: unknown) => T | undefined },
): Promise<Answers<T>> {
  return new Promise((resolve) => {
    const answers: unknown[] = [];
    let expectedServers = -1;
    let countedServers = 0;
    let expectedAnswers = 0;
    let settled = false;
    const packet = { type: PacketType.EVENT, data: [event, payload] };
    const settle = (accepted?: T) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(accepted === undefined ? { answers } : { accepted, answers });
    };
    const timer = setTimeout(() => settle(), options.timeoutMs);
    const complete = () => {
      if (expectedServers === countedServers && answers.length === expectedAnswers) settle();
    };
    nsp.adapter.broadcastWithAck(
      packet,
      { rooms: new Set([room]), except: new Set(), flags: { timeout: options.timeoutMs } },
      (clientCount) => {
        expectedAnswers += clientCount;
        countedServers += 1;
        complete();
      },
      (answer: unknown) => {
        if (settled) return;
        answers.push(answer);
        const accepted = options.accept(answer);
        if (accepted !== undefined) settle(accepted);
        else complete();
      },
    );
    void nsp.adapter.serverCount().then((count) => {
      expectedServers = count;
      complete();
    });
  });
}
