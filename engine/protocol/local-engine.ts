import { z } from "zod";

/**
 * What the local engine's keeper (engine/daemon-main.ts, run by `npm start` as its "engine"
 * child) tells `npm start` over their IPC channel: which engine process serves the local
 * cluster, and whether it was already running. The engine itself outlives `npm start`.
 */
export const localEngineReport = z.object({
  type: z.literal("local-engine"),
  pid: z.number().int().positive(),
  outcome: z.enum(["kept", "started"]),
  /** The engine's output, appended to this file. */
  logFile: z.string(),
});
export type LocalEngineReport = z.infer<typeof localEngineReport>;
