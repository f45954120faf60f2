/**
 * Runs work one after another per key, in the order it was queued; work of different keys runs
 * freely. A failure does not stop the work queued behind it. The map holds a key only while work
 * of it is queued or running.
 */
export function serialByKey() {
  const tails = new Map<string, Promise<void>>();
  return function run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const done = (tails.get(key) ?? Promise.resolve()).then(work);
    const tail = done.then(
      () => {},
      () => {},
    );
    tails.set(key, tail);
    void tail.then(() => {
      if (tails.get(key) === tail) tails.delete(key);
    });
    return done;
  };
}
