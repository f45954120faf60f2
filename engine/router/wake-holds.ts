/**
 * Requests held for sleeping services (issue 16, part 3): a sleeping service's request waits
 * here while the engine starts its release, then goes on to it. Each service's queue is
 * bounded; a request waits at most `timeoutMs` and is then answered 503 with Retry-After, and a
 * browser's (one that accepts HTML) gets a waiting page after `pageAfterMs` instead of a blank
 * wait. Every held request asks for a wake again, so a wake that failed is retried by the next
 * request, not in a loop.
 *
 * The engine learns of wakes through its `/wakes` long poll, and it may restart at any time. A
 * wake is forgotten only once its answer went out on a live connection: a poll whose connection
 * went away gets nothing, and an answer that could not be written is asked again. An answer the
 * engine read and then died with is covered too: while a service's requests still wait, its wake
 * is asked again `askAgainAfterMs` after it was last handed over (a live engine ignores a service
 * it is already waking).
 */

export type HeldRequest = {
  /** Sends the request on (its route has an upstream again, or is sleeping again: then it is held again). */
  resume(): void;
  /** The wait lasted `timeoutMs`: answer 503. */
  expire(): void;
  /** Answers the waiting page; absent for clients that do not accept HTML (they just wait). */
  page?(): void;
};

export type WakeHoldsOptions = { maxPerService: number; timeoutMs: number; pageAfterMs: number; askAgainAfterMs: number };

/** `askAgainAfterMs`: about what an engine takes to restart, well within `timeoutMs`. */
export const WAKE_DEFAULTS: WakeHoldsOptions = { maxPerService: 512, timeoutMs: 60_000, pageAfterMs: 3_000, askAgainAfterMs: 5_000 };

type Entry = { request: HeldRequest; timers: NodeJS.Timeout[] };

export function createWakeHolds(options: WakeHoldsOptions) {
  const queues = new Map<string, Set<Entry>>();
  /** Services asked to wake since the engine last looked. */
  const asked = new Set<string>();
  /** When each service with requests waiting was last handed to the engine (its wake is asked again `askAgainAfterMs` later). */
  const handedAt = new Map<string, number>();
  let waiter: ((serviceIds: string[]) => void) | null = null;

  const forget = (serviceId: string) => {
    queues.delete(serviceId);
    handedAt.delete(serviceId);
  };

  const take = (serviceId: string, entry: Entry) => {
    for (const timer of entry.timers) clearTimeout(timer);
    const queue = queues.get(serviceId);
    queue?.delete(entry);
    if (queue?.size === 0) forget(serviceId);
  };

  const ask = (serviceId: string) => {
    asked.add(serviceId);
    if (!waiter) return;
    const wake = waiter;
    waiter = null;
    wake(handOver());
  };

  /** Services whose requests still wait though their wake was handed over `askAgainAfterMs` ago or more. */
  const dueAgain = (now: number) =>
    [...handedAt].filter(([serviceId, at]) => now - at >= options.askAgainAfterMs && queues.has(serviceId)).map(([serviceId]) => serviceId);

  /** When the next wake is due to be asked again (Infinity when none is handed over). */
  const nextDueAgain = () => Math.min(...[...handedAt.values()].map((at) => at + options.askAgainAfterMs));

  const handOver = () => {
    const now = Date.now();
    const serviceIds = [...new Set([...asked, ...dueAgain(now)])];
    asked.clear();
    for (const serviceId of serviceIds) if (queues.has(serviceId)) handedAt.set(serviceId, now);
    return serviceIds;
  };

  return {
    /** Holds a request; false when the service's queue is full (the caller answers 503 at once). Returns the function that lets go of it (the client left). */
    hold(serviceId: string, request: HeldRequest): (() => void) | null {
      let queue = queues.get(serviceId);
      if (!queue) queues.set(serviceId, (queue = new Set()));
      if (queue.size >= options.maxPerService) {
        ask(serviceId);
        return null;
      }
      const entry: Entry = { request, timers: [] };
      entry.timers.push(
        setTimeout(() => {
          take(serviceId, entry);
          request.expire();
        }, options.timeoutMs),
      );
      if (request.page)
        entry.timers.push(
          setTimeout(() => {
            take(serviceId, entry);
            request.page?.();
          }, options.pageAfterMs),
        );
      queue.add(entry);
      ask(serviceId);
      return () => take(serviceId, entry);
    },

    /** The service has an upstream again (or no longer sleeps): every request it held goes on, in arrival order. */
    release(serviceId: string): void {
      const queue = queues.get(serviceId);
      if (!queue) return;
      forget(serviceId);
      for (const entry of queue) {
        for (const timer of entry.timers) clearTimeout(timer);
        entry.request.resume();
      }
    },

    /**
     * The services asked to wake since the last call (and those due to be asked again); waits up
     * to `waitMs` for one when none is. `gone` aborts when the poll's connection goes away: the
     * poll then gets nothing, and what it was not given stays asked for the next one.
     */
    nextWakes(waitMs: number, gone?: AbortSignal): Promise<string[]> {
      if (gone?.aborted) return Promise.resolve([]);
      const now = Date.now();
      if (asked.size > 0 || dueAgain(now).length > 0) return Promise.resolve(handOver());
      // One poller at a time (the engine): a newer poll replaces an older one, which gets nothing.
      waiter?.([]);
      return new Promise((resolve) => {
        const finish = (serviceIds: string[]) => {
          clearTimeout(timer);
          gone?.removeEventListener("abort", leave);
          if (waiter === finish) waiter = null;
          resolve(serviceIds);
        };
        const leave = () => finish([]);
        // Answered when the wait is over, or earlier when a wake handed over before is due to be asked again.
        const timer = setTimeout(() => finish(dueAgain(Date.now()).length > 0 ? handOver() : []), Math.min(waitMs, Math.max(0, nextDueAgain() - now)));
        gone?.addEventListener("abort", leave, { once: true });
        waiter = finish;
      });
    },

    /** An answer carrying these services never reached the engine (its connection was gone): they are asked again. */
    notDelivered(serviceIds: string[]): void {
      for (const serviceId of serviceIds) {
        handedAt.delete(serviceId);
        ask(serviceId);
      }
    },

    counts(): Record<string, number> {
      return Object.fromEntries([...queues].map(([serviceId, queue]) => [serviceId, queue.size]));
    },
  };
}
