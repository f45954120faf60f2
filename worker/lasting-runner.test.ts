import { Logger as WorkerLogger, run, type Runner, type WorkerEventMap } from "graphile-worker";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../test/database";
import { eventually } from "../test/engine-harness";
import { testPort } from "../test/support/ports";
import { startWorkerHealthServer } from "./health-server";
import { startLastingRunner, type LastingRunner } from "./lasting-runner";

const silent = new WorkerLogger(() => () => {});

let database: TestDatabase;
/** A port nothing listens on: a connection to it is refused, as while PostgreSQL is down. */
let refusedUrl: string;

beforeAll(async () => {
  database = await createTestDatabase();
  refusedUrl = `postgres://postgres@127.0.0.1:${await testPort()}/slipway`;
});

/** A promise and the function that resolves it. */
function signal<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * graphile-worker runners for startLastingRunner: the first starts; the next `refusals` tries
 * meet a refused connection; the one after waits for `admit` before it starts.
 */
function runnerStarts(refusals: number) {
  const runners: Runner[] = [];
  const refused = signal();
  const admitting = signal();
  const admit = signal();
  let tries = 0;
  const start = async (): Promise<Runner> => {
    tries += 1;
    const options = { taskList: {}, concurrency: 1, noHandleSignals: true, pollInterval: 1000, logger: silent };
    if (tries > 1 && tries <= 1 + refusals) {
      return run({ ...options, connectionString: refusedUrl }).catch((error: unknown) => {
        if (tries === 1 + refusals) refused.resolve();
        throw error;
      });
    }
    if (tries > 1) {
      admitting.resolve();
      await admit.promise;
    }
    const runner = await run({ ...options, connectionString: database.url });
    runners.push(runner);
    return runner;
  };
  return { start, runners, refused: refused.promise, admitting: admitting.promise, admit: admit.resolve };
}

describe("the worker's readiness while its runner is replaced", () => {
  let lasting: LastingRunner | undefined;
  let health: Awaited<ReturnType<typeof startWorkerHealthServer>> | undefined;
  afterAll(async () => {
    if (lasting?.running()) await lasting.stop();
    await health?.close();
  });

  const ready = async () => {
    const response = await fetch(`http://127.0.0.1:${health!.port}/api/health/ready`);
    return { status: response.status, body: (await response.json()) as { database: string } };
  };

  it("is 503 from the runner's loss until its replacement started, though the database answers", async () => {
    const starts = runnerStarts(2);
    lasting = await startLastingRunner(starts.start, pino({ level: "silent" }));
    health = await startWorkerHealthServer({ db: database.db, port: 0, host: "127.0.0.1", running: lasting.running });
    expect((await ready()).status).toBe(200);

    // What graphile-worker's cron does when it cannot schedule a minute's jobs: the runner ends.
    await starts.runners[0]!.stop();
    await starts.refused;
    // Waiting for the database with backoff (0.5 s, then 1 s): no runner runs.
    expect(await ready()).toMatchObject({ status: 503, body: { database: "up" } });
    await starts.admitting;
    // The database answers, and the new runner is starting: still none runs.
    expect(await ready()).toMatchObject({ status: 503, body: { database: "up" } });

    starts.admit();
    await eventually(async () => (await ready()).status === 200, 10_000, "readiness once the new runner runs");
    expect(starts.runners).toHaveLength(2);
    expect(lasting.running()).toBe(true);

    await lasting.stop();
    expect(lasting.running()).toBe(false);
    expect((await ready()).status).toBe(503);
  });
});

describe("stopping the runner", () => {
  it("stops once when asked twice, at the same time or after", async () => {
    const starts = runnerStarts(0);
    const lasting = await startLastingRunner(starts.start, pino({ level: "silent" }));
    // A shutdown signal and a caller's own cleanup, say.
    await expect(Promise.all([lasting.stop(), lasting.stop()])).resolves.toEqual([undefined, undefined]);
    await expect(lasting.stop()).resolves.toBeUndefined();
    await expect(lasting.promise).resolves.toBeUndefined();
    expect(lasting.running()).toBe(false);
  });

  it("stops while a lost runner is being stopped for its replacement, and starts no other", async () => {
    const starts = runnerStarts(0);
    const lasting = await startLastingRunner(starts.start, pino({ level: "silent" }));
    // What graphile-worker emits when a worker could not record the end of its job: the runner is replaced.
    starts.runners[0]!.events.emit("worker:fatalError", { error: new Error("the database went away") } as unknown as WorkerEventMap["worker:fatalError"]);
    await expect(lasting.stop()).resolves.toBeUndefined();
    await expect(lasting.promise).resolves.toBeUndefined();
    expect(starts.runners).toHaveLength(1);
  });
});
