/**
 * Runs work one after another per key: a service's deploy, stop and restart never interleave,
 * and its state file always ends with the latest write. Work for different keys runs freely.
 */
export class SerialQueues {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(work);
    const settled = run.catch(() => undefined);
    this.tails.set(key, settled);
    void settled.then(() => {
      if (this.tails.get(key) === settled) this.tails.delete(key);
    });
    return run;
  }

  /** Whether work for the key is queued or running. */
  busy(key: string): boolean {
    return this.tails.has(key);
  }

  /** Resolves once the work queued for the key so far has finished. */
  async settled(key: string): Promise<void> {
    await this.tails.get(key);
  }

  /** Resolves once everything queued so far has finished. */
  async idle(): Promise<void> {
    await Promise.all(this.tails.values());
  }
}
