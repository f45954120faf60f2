import { z } from "zod";
import { deploymentEvent, logLine, logStream } from "../protocol/events";

/** One entry of the outbox's journal: an event of a deployment, or a line of a stream, as the protocol carries them. */
export const outboxRecord = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("event"), deploymentId: z.string().uuid(), event: deploymentEvent }),
  z.object({ kind: z.literal("line"), stream: logStream, line: logLine }),
]);
export type OutboxRecord = z.infer<typeof outboxRecord>;

/** Reads a record back from the journal; null for one that is not (a future engine's, or damaged): it is skipped. */
export const parseRecord = (value: unknown): OutboxRecord | null => outboxRecord.safeParse(value).data ?? null;
