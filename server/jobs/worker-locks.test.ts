import type { Worker } from "graphile-worker";
import { sql } from "drizzle-orm";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../test/database";
import { eventually } from "../../test/engine-harness";
import { holdWorkerLiveness } from "../../worker/liveness";
import { addJob } from "./add-job";
import { unlockDeadWorkers } from "./worker-locks";

let database: TestDatabase;
let liveness: ReturnType<typeof holdWorkerLiveness>;

beforeAll(async () => {
  database = await createTestDatabase();
  liveness = holdWorkerLiveness(database.url, pino({ level: "silent" }));
});
afterAll(() => liveness.close());

/** Marks a job, and the queue it is on, locked by `workerId`, as graphile-worker does when it takes one. */
async function lockedJob(key: string, workerId: string) {
  await addJob(database.db, "process_webhooks", {}, { jobKey: key, queueName: `queue-${key}`, runAt: new Date(Date.now() + 3_600_000) });
  await database.db.execute(sql`update graphile_worker._private_jobs set locked_at = now(), locked_by = ${workerId} where key = ${key}`);
  await database.db.execute(
    sql`update graphile_worker._private_job_queues set locked_at = now(), locked_by = ${workerId} where queue_name = ${`queue-${key}`}`,
  );
}

async function lockedBy(key: string) {
  const { rows } = await database.db.execute<{ job: string | null; queue: string | null }>(sql`
    select jobs.locked_by as job, queues.locked_by as queue
    from graphile_worker._private_jobs jobs join graphile_worker._private_job_queues queues on queues.id = jobs.job_queue_id
    where jobs.key = ${key}`);
  return rows[0];
}

describe("the locks of dead workers", () => {
  it("unlocks the jobs and queues of a worker whose process is gone, and leaves a live worker's alone", async () => {
    // A live worker: this process holds its liveness lock, as worker/runner.ts does for its workers.
    liveness.events.emit("worker:create", { worker: { workerId: "worker-alive" } as Worker, tasks: {} });
    await eventually(
      async () =>
        (await database.db.execute<{ held: number }>(sql`select count(*)::int as held from pg_locks where locktype = 'advisory' and granted`)).rows[0]!.held >
        0,
      5_000,
      "the liveness lock",
    );
    await lockedJob("alive-job", "worker-alive");
    // A dead worker: nothing holds its lock any more (its process was killed).
    await lockedJob("dead-job", "worker-dead");

    expect(await unlockDeadWorkers(database.db)).toEqual(["worker-dead"]);
    expect(await lockedBy("dead-job")).toEqual({ job: null, queue: null });
    expect(await lockedBy("alive-job")).toEqual({ job: "worker-alive", queue: "worker-alive" });
    expect(await unlockDeadWorkers(database.db)).toEqual([]);

    // Once its process ends (here: its liveness connection closes), its locks go too.
    // (PostgreSQL releases a closed connection's advisory locks as its backend exits, a moment after the close.)
    await liveness.close();
    const unlocked = await eventually(
      async () => {
        const workers = await unlockDeadWorkers(database.db);
        return workers.length > 0 ? workers : undefined;
      },
      5_000,
      "the liveness lock released",
    );
    expect(unlocked).toEqual(["worker-alive"]);
    expect(await lockedBy("alive-job")).toEqual({ job: null, queue: null });
  });
});
