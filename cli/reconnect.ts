import { createBackoff } from "../engine/protocol/backoff";
import type { Env } from "./config";
import type { Context } from "./context";
import { CliError, ControlPlaneUnreachable, exitCodes, usageError } from "./errors";
import { durationSeconds, formatDuration } from "./format";

/**
 * Following (`--watch`, `logs --follow`) outlives a control-plane restart (issue 12): under
 * `npm start` the supervisor brings a crashed web process back within seconds. While it is
 * unreachable the follow says so once on stderr, retries with the platform's backoff and, when
 * it answers again, says so and carries on from where it was: each step re-reads the
 * authoritative state "after" what was printed, so nothing is lost or printed twice. Only
 * `ControlPlaneUnreachable` is retried; a 401, 404 or rejected input ends the command at once.
 */
export const DEFAULT_RECONNECT_TIMEOUT_MS = 5 * 60_000;
export const RECONNECT_TIMEOUT_ENV = "SLIPWAY_RECONNECT_TIMEOUT";

/** The longest wait between two tries, so a control plane that is back is noticed soon enough. */
const MAX_RETRY_DELAY_MS = 10_000;

/** Runs one step of a follow, retrying it while the control plane is unreachable. */
export type FollowStep = <T>(step: () => Promise<T>) => Promise<T>;

export function followThroughOutages(ctx: Context): FollowStep {
  const giveUpAfterMs = ctx.reconnectTimeoutMs;
  // Starting at the poll interval: a follow that was polling that often resumes as fast.
  const backoff = createBackoff({ baseMs: ctx.pollIntervalMs, maxMs: MAX_RETRY_DELAY_MS });
  let lostAt: number | null = null;

  return async (step) => {
    for (;;) {
      try {
        const result = await step();
        if (lostAt !== null) {
          ctx.note(`reconnected to the control plane after ${formatDuration(performance.now() - lostAt)}`);
          lostAt = null;
          backoff.reset();
        }
        return result;
      } catch (error) {
        if (!(error instanceof ControlPlaneUnreachable) || ctx.aborted) throw error;
        const now = performance.now();
        if (lostAt === null) {
          lostAt = now;
          ctx.note(`lost the control plane (${error.message}); retrying for up to ${formatDuration(giveUpAfterMs)}`);
        }
        const left = lostAt + giveUpAfterMs - now;
        if (left <= 0) {
          throw new CliError(`gave up after ${formatDuration(now - lostAt)} without the control plane: ${error.message}`, exitCodes.failure, { cause: error });
        }
        // The last try lands on the deadline rather than a whole backoff step after it.
        if (!(await ctx.pause(Math.min(backoff.next(), left)))) throw new CliError("interrupted", exitCodes.interrupted);
      }
    }
  };
}

/**
 * `--reconnect-timeout`, else `$SLIPWAY_RECONNECT_TIMEOUT`, else 5 minutes. Read before any
 * command runs, so a typo fails `deploy --watch` before it deploys rather than at the first outage.
 */
export function reconnectTimeoutMs(option: string | undefined, env: Env): number {
  const [source, text] = option !== undefined ? ["--reconnect-timeout", option] : [RECONNECT_TIMEOUT_ENV, env[RECONNECT_TIMEOUT_ENV]];
  if (text === undefined || text === "") return DEFAULT_RECONNECT_TIMEOUT_MS;
  const seconds = durationSeconds(text);
  if (seconds === null) throw usageError(`${source} "${text}": expected a duration like 30s, 5m or 1h`);
  return seconds * 1000;
}
