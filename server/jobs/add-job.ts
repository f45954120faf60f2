import { sql } from "drizzle-orm";
import { taskCatalog, type TaskName, type TaskPayload } from "./catalog";
import type { Executor } from "../db/client";

/**
 * Adds a graphile-worker job with SQL, so that it commits or rolls back with the caller's
 * transaction (the row a job concerns and the job land together).
 */
export async function addJob<N extends TaskName>(
  db: Executor,
  task: N,
  payload: TaskPayload<N>,
  options: { queueName?: string; jobKey?: string; runAt?: Date; maxAttempts?: number } = {},
): Promise<void> {
  const parsed = taskCatalog[task].parse(payload);
  await db.execute(sql`select graphile_worker.add_job(
    ${task},
    ${JSON.stringify(parsed)}::json,
    queue_name => ${options.queueName ?? null}::text,
    run_at => ${options.runAt?.toISOString() ?? null}::timestamptz,
    max_attempts => ${options.maxAttempts ?? 25}::int,
    job_key => ${options.jobKey ?? null}::text
  )`);
}
