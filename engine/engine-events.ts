import { EventEmitter } from "node:events";

/**
 * What the engine tells observers as it works, typed, as graphile-worker's WorkerEvents are.
 * Tests wait on these instead of sleeping: "the supervisor looked twice and restarted nothing"
 * is a fact the engine states, where "nothing happened in 800 ms" is a guess about a busy machine.
 */
export type EngineEventMap = {
  /** The crash-restart supervisor looked at every live release once (`restarting`: the ones it found dead). */
  "supervision:pass": [{ checked: number; restarting: number }];
  /** A scheduled (cron) run of a JOB ended. */
  "job:run": [{ serviceId: string; runId: string; outcome: string }];
  /** A JOB's schedule ended (stopped, deleted, or replaced by a new release's). */
  "job:unscheduled": [{ serviceId: string }];
};

export type EngineEvents = EventEmitter<EngineEventMap>;

export function createEngineEvents(): EngineEvents {
  return new EventEmitter<EngineEventMap>();
}
