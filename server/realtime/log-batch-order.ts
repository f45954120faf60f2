import { AppError } from "../errors";
import { serialByKey } from "./serial-by-key";

/**
 * The order in which one engine connection's batches of log lines are stored (issue 17, item 7).
 * An engine keeps a few batches of a stream in flight (engine/outbox.ts), and readers resume
 * "after the last seq they have" (`slipway logs --follow`, a viewer's pages), so a stream's lines
 * must be committed in seq order: a line committed after a later one would be skipped by a reader
 * that polled in between.
 *
 * So batches of one stream are stored one after the other, in the order they arrived (a socket
 * delivers in order), and once one fails, those the engine sent behind it (`pipelined`) are
 * refused, until the engine sends again from the failed one: a batch that is not pipelined,
 * which it sends only once every earlier batch of the stream was answered. A batch sent again
 * stores nothing twice (recordLogBatch skips seqs already stored), and its acknowledgement is
 * the same.
 */
export function createLogBatchOrder() {
  /** Per stream, its batches being stored, one after the other. */
  const inOrder = serialByKey();
  /** Streams whose last batch failed: pipelined batches behind it are refused. */
  const broken = new Set<string>();

  return function storeInOrder<T>(stream: string, pipelined: boolean, store: () => Promise<T>): Promise<T> {
    return inOrder(stream, async () => {
      if (!pipelined) broken.delete(stream);
      else if (broken.has(stream)) throw new AppError("CONFLICT", "a batch before this one was not stored: send again from that one");
      try {
        return await store();
      } catch (error) {
        broken.add(stream);
        throw error;
      }
    });
  };
}
