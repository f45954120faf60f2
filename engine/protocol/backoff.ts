/**
 * The one backoff policy of the platform: each try waits twice as long as the one before, from
 * `baseMs` up to `maxMs`, with some jitter so that many engines (or clients) that lost the
 * control plane at the same moment do not all come back in the same millisecond. It lives in the
 * protocol folder because both sides use it: the engine (reconnects, its outbox), the supervisor
 * of `npm start` (restarts) and the CLI (following a deployment).
 */
export type Backoff = {
  /** The delay before the next try, and counts the try. */
  next(): number;
  /** After a success: the next failure waits `baseMs` again. */
  reset(): void;
  /** Tries counted since the last reset. */
  readonly attempts: number;
};

export function createBackoff(options: { baseMs: number; maxMs: number; jitter?: number; random?: () => number }): Backoff {
  const jitter = options.jitter ?? 0.2;
  const random = options.random ?? Math.random;
  let attempts = 0;
  return {
    next() {
      const plain = Math.min(options.baseMs * 2 ** attempts, options.maxMs);
      attempts += 1;
      return Math.round(plain * (1 - jitter + 2 * jitter * random()));
    },
    reset() {
      attempts = 0;
    },
    get attempts() {
      return attempts;
    },
  };
}
