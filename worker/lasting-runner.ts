import { setTimeout as sleep } from "node:timers/promises";
import type { Runner } from "graphile-worker";
import { createBackoff } from "../engine/protocol/backoff";
import { isDatabaseUnavailable } from "../server/db/errors";
import type { Logger } from "../server/logger";

/** The process's graphile-worker runner, replaced as a whole when it loses a worker. */
export type LastingRunner = {
  /** Settles when the runner ends for good: after `stop()`, or a runner that ended by itself. */
  promise: Promise<void>;
  /** Stops the runner; a second call waits for the first. */
  stop: () => Promise<void>;
  /**
   * Whether a runner runs now: false while a lost one is being replaced (which waits for the
   * database with backoff, up to 5 s a try), and once it ended. Readiness is 503 while false.
   */
  running: () => boolean;
};

/**
 * graphile-worker 0.16's runner follows its cron's promise with a `.finally()` whose own promise
 * nobody handles (src/runner.ts, buildRunner): when the cron cannot schedule a minute's jobs, that
 * promise rejects unhandled, which ends a Node process, on top of stopping the runner (which
 * {@link startLastingRunner} replaces). Such a rejection is logged when its cause is a database
 * that cannot be reached; any other still ends the process, as Node would have.
 */
export function surviveUnhandledDatabaseOutages(logger: Logger): void {
  process.on("unhandledRejection", (reason) => {
    if (!isDatabaseUnavailable(reason)) throw reason;
    logger.warn({ err: reason }, "a database operation nobody waited for failed: the database is unavailable");
  });
}

/**
 * Starts a runner, waiting with backoff while the database cannot be reached (refused, starting
 * up, shutting down). A worker that exited instead would count each try as a failed start, and a
 * PostgreSQL down for a minute would make npm start's supervisor give up on a healthy worker
 * (found by the chaos test).
 */
export async function startWhenTheDatabaseAnswers(start: () => Promise<Runner>, logger: Logger): Promise<Runner> {
  const backoff = createBackoff({ baseMs: 500, maxMs: 5_000 });
  for (;;) {
    try {
      return await start();
    } catch (error) {
      if (!isDatabaseUnavailable(error)) throw error;
      const delayMs = backoff.next();
      logger.warn({ retryInSeconds: Math.round(delayMs / 100) / 10 }, "the database is unavailable; waiting for it");
      await sleep(delayMs);
    }
  }
}

/**
 * The runner, started again in this process whenever graphile-worker 0.16 gives up on part of it
 * because the database went away (a restart, a failover), rather than leaving the process with
 * fewer workers, none, or none at all:
 *
 * - A worker that cannot record the end of the job it ran is retired for good ("Failed to release
 *   job …; committing seppuku") and never replaced (its main.js: "TODO: handle when a worker shuts
 *   down (spawn a new one)"): one worker lost per job in flight, until the process ran none while
 *   its readiness said ready.
 * - The cron stops at the first minute it cannot schedule its jobs, and the runner with it ("The
 *   calling code should re-schedule"): a database down at the turn of a minute ended the process.
 *
 * The new runner starts once the database answers. A lost worker's job stays locked by its id
 * until the old runner's liveness locks end with it (worker/liveness.ts); the lock reconciler,
 * which the new runner runs at once, then unlocks it for the new workers.
 */
export async function startLastingRunner(start: () => Promise<Runner>, logger: Logger): Promise<LastingRunner> {
  let current = await startWhenTheDatabaseAnswers(start, logger);
  let stopping = false;
  /** A replacement failed for a reason other than the database: the runner is gone for good. */
  let ended = false;
  let replacing: Promise<void> | null = null;
  const retired = new WeakSet<Runner>();
  let settle!: { resolve: () => void; reject: (error: unknown) => void };
  const promise = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));

  const replace = (lost: Runner, why: string) => {
    if (stopping || retired.has(lost)) return;
    retired.add(lost);
    logger.warn({ why }, "starting the job runner again");
    replacing = (async () => {
      await lost.stop().catch((error: unknown) => logger.debug({ err: error }, "the runner being replaced did not stop cleanly"));
      if (stopping) return;
      current = await startWhenTheDatabaseAnswers(start, logger);
      watch(current);
      logger.info("the job runner runs again");
    })()
      .catch((error: unknown) => {
        ended = true;
        settle.reject(error);
      })
      .finally(() => (replacing = null));
  };

  const watch = (runner: Runner) => {
    runner.events.once("worker:fatalError", () => replace(runner, "a worker could not record the end of its job"));
    runner.promise.then(
      () => replace(runner, "the runner stopped by itself"),
      (error: unknown) => replace(runner, `the runner stopped: ${error instanceof Error ? error.message : String(error)}`),
    );
  };
  watch(current);

  let stopped: Promise<void> | null = null;
  const stop = async () => {
    stopping = true;
    await replacing;
    // A runner lost while stopping was stopped by its replacement, which then started none.
    if (!retired.has(current)) await current.stop();
    settle.resolve();
  };

  return {
    promise,
    // graphile-worker's runner throws when stopped twice; a shutdown signal and a caller's cleanup may both stop this one.
    stop: () => (stopped ??= stop()),
    running: () => !stopping && !ended && replacing === null,
  };
}
