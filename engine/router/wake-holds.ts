/**
 * Requests held for sleeping services (issue 16, part 3): a sleeping service's request waits
 * here while the engine starts its release, then goes on to it. Each service's queue is
 * bounded; a request waits at most `timeoutMs` and is then answered 503 with Retry-After, and a
 * browser's (one that accepts HTML) gets a waiting page after `pageAfterMs` instead of a blank
 * wait. Every held request asks for a wake again, so a wake that failed is retried by the next
 * request, not in a loop.
 */

export type HeldRequest = {
  /** Sends the request on (its route has an upstream again, or is sleeping again: then it is held again). */
  resume(): void;
  /** The wait lasted `timeoutMs`: answer 503. */
  expire(): void;
  /** Answers the waiting page; absent for clients that do not accept HTML (they just wait). */
  page?(): void;
};

export type WakeHoldsOptions = { maxPerService: number; timeoutMs: number; pageAfterMs: number };

export const WAKE_DEFAULTS: WakeHoldsOptions = { maxPerService: 512, timeoutMs: 60_000, pageAfterMs: 3_000 };

type Entry = { request: HeldRequest; timers: NodeJS.Timeout[] };

export function createWakeHolds(options: WakeHoldsOptions) {
  const queues = new Map<string, Set<Entry>>();
  /** Services asked to wake since the engine last looked. */
  const asked = new Set<string>();
  let waiter: ((serviceIds: string[]) => void) | null = null;

  const take = (serviceId: string, entry: Entry) => {
    for (const timer of entry.timers) clearTimeout(timer);
    const queue = queues.get(serviceId);
    queue?.delete(entry);
    if (queue?.size === 0) queues.delete(serviceId);
  };

  const ask = (serviceId: string) => {
    asked.add(serviceId);
    if (!waiter) return;
    const wake = waiter;
    waiter = null;
    wake(drainAsked());
  };

  const drainAsked = () => {
    const serviceIds = [...asked];
    asked.clear();
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
      queues.delete(serviceId);
      for (const entry of queue) {
        for (const timer of entry.timers) clearTimeout(timer);
        entry.request.resume();
      }
    },

    /** The services asked to wake since the last call; waits up to `waitMs` for one when none is. */
    nextWakes(waitMs: number): Promise<string[]> {
      if (asked.size > 0) return Promise.resolve(drainAsked());
      // One poller at a time (the engine): a newer poll replaces an older one, which gets nothing.
      waiter?.([]);
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          if (waiter === done) waiter = null;
          resolve([]);
        }, waitMs);
        const done = (serviceIds: string[]) => {
          clearTimeout(timer);
          resolve(serviceIds);
        };
        waiter = done;
      });
    },

    counts(): Record<string, number> {
      return Object.fromEntries([...queues].map(([serviceId, queue]) => [serviceId, queue.size]));
    },
  };
}
