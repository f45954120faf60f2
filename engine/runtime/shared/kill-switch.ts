/**
 * Ends a run at its timeout or when its signal aborts, by calling `kill`, and remembers which
 * came first: a timed-out run is retried, a canceled one is not.
 */
export function killSwitch(options: { timeoutMs: number; signal?: AbortSignal; kill: () => void }) {
  let timedOut = false;
  let aborted = false;
  const timer = setTimeout(() => {
    timedOut = true;
    options.kill();
  }, options.timeoutMs);
  const onAbort = () => {
    aborted = true;
    options.kill();
  };
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  return {
    get timedOut() {
      return timedOut;
    },
    get aborted() {
      return aborted;
    },
    /** The run ended: no kill any more. */
    dispose() {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
    },
  };
}
