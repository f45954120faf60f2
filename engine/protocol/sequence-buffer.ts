/**
 * Puts messages that carry a per-stream `seq` (0, 1, 2, …) back in order. A message that never
 * arrives (lost while a web process restarted) must not stall the stream forever: after
 * `gapMs` with a gap, or once `maxPending` messages wait behind it, the buffer skips it.
 */
export function createSequenceBuffer<T extends { seq: number }>(deliver: (message: T) => void, options: { gapMs?: number; maxPending?: number } = {}) {
  const gapMs = options.gapMs ?? 1000;
  const maxPending = options.maxPending ?? 1000;
  const pending = new Map<number, T>();
  let next = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;

  const drain = () => {
    for (let message = pending.get(next); message; message = pending.get(next)) {
      pending.delete(next);
      next += 1;
      deliver(message);
    }
    if (timer) clearTimeout(timer);
    timer = null;
    if (pending.size > 0) timer = setTimeout(skip, gapMs);
  };
  const skip = () => {
    timer = null;
    if (pending.size === 0) return;
    next = Math.min(...pending.keys());
    drain();
  };

  return {
    push(message: T) {
      if (message.seq < next) return;
      pending.set(message.seq, message);
      if (pending.size > maxPending) return skip();
      drain();
    },
    /** The seq the buffer waits for. */
    get next() {
      return next;
    },
    dispose() {
      if (timer) clearTimeout(timer);
      pending.clear();
    },
  };
}
