/**
 * Sequence numbers for events and log lines that stay increasing across engine restarts without
 * any state on disk: microseconds since the epoch, bumped by one when two numbers would collide.
 * (~1.7e15 today, well inside Number.MAX_SAFE_INTEGER for the next two centuries.)
 */
export function createSequence(now: () => number = Date.now) {
  let last = 0;
  return function next(): number {
    last = Math.max(last + 1, now() * 1000);
    return last;
  };
}
