import type pino from "pino";
import { processStartTime } from "../runtime/local/processes";

/** How often the engine looks whether its router still runs: a dead router makes every app unreachable until then. */
export const ROUTER_CHECK_INTERVAL_MS = 2_000;
/** A router that ran this long after a restart has recovered: the next death is restarted after one interval again. */
const ROUTER_HEALTHY_UPTIME_MS = 60_000;
/** The longest wait between restarts of a router that keeps dying (or does not start). */
const ROUTER_BACKOFF_MAX_MS = 60_000;

export type RouterWatch = {
  /** Stops watching; resolves once a restart under way has finished, so no router starts after it. */
  stop(): Promise<void>;
};

/**
 * The engine's watchdog over its router process: the router runs detached (apps keep serving
 * while the engine is down), so nothing else notices when it dies (OOM kill, crash, kill) and
 * every app stays unreachable until the engine restarts. While the engine runs, this looks every
 * interval whether the router it started is still the same process (its pid and start time, a
 * read of /proc: a busy router that is slow to answer its control socket is not taken for a
 * dead one), and starts it again when it is gone, then hands it the routes and custom domains
 * (`handAgain`). A router that keeps dying is restarted after a delay that doubles each time.
 * One check or restart at a time: the next is scheduled when the previous one has finished.
 */
export function watchRouter(options: {
  /** The pid `ensureRouter` returned when the engine started. */
  pid: number;
  /** Starts the router again with the engine's options; its pid. */
  restart: () => Promise<number>;
  /** Hands a restarted router what the engine last handed its predecessor. */
  handAgain: () => Promise<void>;
  logger: pino.Logger;
  intervalMs?: number;
}): RouterWatch {
  const { logger } = options;
  const intervalMs = options.intervalMs ?? ROUTER_CHECK_INTERVAL_MS;
  let pid = options.pid;
  let startTime = processStartTime(pid);
  let restartedAt: number | null = null;
  /** Restarts in a row, each within the healthy uptime of the previous one. */
  let streak = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let checking: Promise<void> | null = null;

  const schedule = (delayMs: number) => {
    if (stopped) return;
    timer = setTimeout(() => {
      timer = null;
      checking = check()
        .then(schedule)
        .finally(() => (checking = null));
    }, delayMs);
    timer.unref();
  };

  /** One look, and a restart when the router is gone; how long to wait before the next look. */
  const check = async (): Promise<number> => {
    if (restartedAt !== null && Date.now() - restartedAt > ROUTER_HEALTHY_UPTIME_MS) streak = 0;
    if (startTime !== null && processStartTime(pid) === startTime) return intervalMs;
    streak += 1;
    restartedAt = Date.now();
    const backoffMs = Math.min(intervalMs * 2 ** (streak - 1), ROUTER_BACKOFF_MAX_MS);
    const gone = pid;
    try {
      pid = await options.restart();
      startTime = processStartTime(pid);
    } catch (error) {
      logger.error({ err: error, pid: gone, retryInMs: backoffMs }, `the router (pid ${gone}) was gone and did not start again`);
      return backoffMs;
    }
    logger.warn({ pid: gone, newPid: pid, restarts: streak }, `the router (pid ${gone}) was gone: started it again as pid ${pid}`);
    try {
      await options.handAgain();
    } catch (error) {
      // It serves what it read back from its files (what its predecessor accepted); the runtime's next change hands the rest.
      logger.error({ err: error, pid }, "the restarted router did not take the routes or custom domains");
    }
    return backoffMs;
  };

  schedule(intervalMs);
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      await checking;
    },
  };
}
