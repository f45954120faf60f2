/**
 * A database that vanishes without closing its connections (a blackholed failover, a frozen VM,
 * a network partition): no RST, no FIN, no error message, just silence. Unlike a restart
 * (database-restart.test.ts), nothing tells the control plane: an idle LISTEN connection would
 * wait for notifications for ever, a query would wait for an answer until the kernel gives up
 * (about 15 minutes), and a request queued behind a pool full of such queries would wait with it.
 *
 * Between the control plane's pieces (a pool as connectDatabase makes it, web's LISTEN
 * connection, the socket.io adapter's) and the test run's PostgreSQL stands a TCP proxy that can
 * go silent (test/support/freezable-proxy.ts). Each piece must fail fast while it is silent, with
 * the error the API turns into a 503, and recover without a restart once new connections go
 * through again, while the silent ones stay silent (a failover to another server).
 */
import http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { createAdapter } from "@socket.io/postgres-adapter";
import { TRPCError } from "@trpc/server";
import { sql } from "drizzle-orm";
import type { WorkerEventMap } from "graphile-worker";
import pg from "pg";
import pino from "pino";
import { Server } from "socket.io";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCaller } from "../../server/api/root";
import { CONNECT_TIMEOUT_MS, connectDatabase, connectionSettings, guardPoolErrors, type DatabaseHandle } from "../../server/db/client";
import { isDatabaseUnavailable } from "../../server/db/errors";
import { addJob } from "../../server/jobs/add-job";
import { workerLivenessLock } from "../../server/jobs/worker-locks";
import { announceOnceSubscribed, watchAdapterReconnects } from "../../server/realtime/adapter-subscription";
import { LISTEN_CONNECTION_CHECK, listenToChannels } from "../../server/realtime/pg-listener";
import { startLastingRunner } from "../../worker/lasting-runner";
import { holdWorkerLiveness } from "../../worker/liveness";
import { startWorker } from "../../worker/runner";
import { createTestDatabase, type TestDatabase } from "../database";
import { eventually } from "../engine-harness";
import { startFreezableProxy, type FreezableProxy } from "../support/freezable-proxy";
import { seedOrganization, testServices, type SeededOrganization } from "../support/seed";

/** The scheduling slack allowed on top of a timeout, on a busy two-core machine. */
const SLACK_MS = 3_000;
/** How long a LISTEN connection may take to notice its silence: a check's interval and its timeout. */
const NOTICED_WITHIN_MS = LISTEN_CONNECTION_CHECK.intervalMs + LISTEN_CONNECTION_CHECK.timeoutMs;
/** The socket.io adapter waits up to 3 s before it reconnects (its PubSubClient.scheduleReconnection). */
const ADAPTER_RECONNECTION_DELAY_MS = 3_000;
/** The network stays silent this long before new connections go through again. */
const SILENT_MS = 3_000;

let database: TestDatabase;
let proxy: FreezableProxy;
let proxied: string;
let org: SeededOrganization;
const handles: DatabaseHandle[] = [];
const closers: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  org = await seedOrganization(testServices(database.db), "frozen");
  const upstream = new URL(database.url);
  proxy = await startFreezableProxy({ host: "127.0.0.1", port: Number(upstream.port || 5432) });
  proxied = proxy.url(database.url);
});

afterAll(async () => {
  // The silent connections never answer a goodbye: cut first, so that nothing waits on them.
  proxy?.closeAll();
  for (const close of closers.reverse()) await close();
  for (const handle of handles) await handle.close();
  await proxy?.close();
});

/** A pool through the proxy, as connectDatabase makes one for a web or worker process. */
function proxiedDatabase(options: Parameters<typeof connectDatabase>[1] = {}): DatabaseHandle {
  const handle = connectDatabase(proxied, options);
  handles.push(handle);
  return handle;
}

/**
 * Waits, if the next minute turns within `ms`, until graphile-worker's cron has scheduled that
 * minute's jobs: a cron that cannot schedule them stops its runner with a rejection nobody
 * handles (worker/lasting-runner.ts), which the worker process survives and vitest reports.
 */
async function clearOfTheCronMinute(ms: number): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < ms) await sleep(left + 2_000);
}

/** Whether graphile-worker's cron registered the worker's crontab (its first queries, as a runner starts). */
async function cronRegistered(): Promise<boolean> {
  const { rows } = await database.pool.query<{ count: number }>("select count(*)::int as count from graphile_worker._private_known_crontabs");
  return rows[0]!.count > 0;
}

type Settled = { state: "resolved" | "rejected" | "still pending"; error?: unknown; ms: number };

/** How `promise` settled within `boundMs`, and when: a hang shows as "still pending" instead of the test's own timeout. */
async function settleWithin(promise: Promise<unknown>, boundMs: number): Promise<Settled> {
  const started = Date.now();
  const outcome = await Promise.race([
    promise.then(
      () => ({ state: "resolved" as const }),
      (error: unknown) => ({ state: "rejected" as const, error }),
    ),
    sleep(boundMs).then(() => ({ state: "still pending" as const })),
  ]);
  return { ...outcome, ms: Date.now() - started };
}

/** The driver's own message under the ORM's "Failed query" wrapping. */
function rootMessage(error: unknown): string | undefined {
  let current = error;
  while (current instanceof Error && current.cause instanceof Error) current = current.cause;
  return current instanceof Error ? current.message : undefined;
}

/** What the test checks of a refusal: how it settled, and whether the API would answer it with a 503. */
const refusal = ({ state, error }: Settled) => ({ state, unavailable: isDatabaseUnavailable(error), message: rootMessage(error) });

describe("a database that goes silent without closing its connections", () => {
  it("refuses a request that needs a new connection within the connection timeout, with the API's 503", async () => {
    const { db } = proxiedDatabase();
    proxy.freeze();
    try {
      const api = createCaller({ services: testServices(db), actor: org.as("DEVELOPER") });
      const answer = await settleWithin(api.projects.list({}), CONNECT_TIMEOUT_MS + SLACK_MS);
      expect(answer.state).toBe("rejected");
      expect(answer.error).toBeInstanceOf(TRPCError);
      expect((answer.error as TRPCError).code).toBe("SERVICE_UNAVAILABLE");
      expect(isDatabaseUnavailable(answer.error)).toBe(true);
      expect(answer.ms).toBeGreaterThanOrEqual(CONNECT_TIMEOUT_MS - 100);
      console.log(`a request was refused ${answer.ms} ms into the silence (connection timeout ${CONNECT_TIMEOUT_MS} ms)`);
    } finally {
      proxy.failOver();
    }
  });

  it("fails a query on a silent pooled connection within the query timeout, and one queued behind it within the connection timeout; serves again after the failover", async () => {
    const queryTimeoutMs = 2_000;
    const connectTimeoutMs = 1_000;
    const { db } = proxiedDatabase({ max: 1, queryTimeoutMs, connectTimeoutMs });
    await db.execute(sql`select 1`);
    // The pool's one connection, idle, goes silent: the next query is sent on it.
    proxy.freeze();
    try {
      const [onSilent, queued] = await Promise.all([
        settleWithin(db.execute(sql`select 'on the silent connection'`), queryTimeoutMs + SLACK_MS),
        settleWithin(db.execute(sql`select 'queued behind it'`), connectTimeoutMs + SLACK_MS),
      ]);
      expect(refusal(queued)).toEqual({ state: "rejected", unavailable: true, message: expect.stringMatching(/timeout/) });
      expect(refusal(onSilent)).toEqual({ state: "rejected", unavailable: true, message: expect.stringMatching(/Query read timeout/) });
      console.log(`a query on a silent connection failed after ${onSilent.ms} ms, one queued behind it after ${queued.ms} ms`);
    } finally {
      proxy.failOver();
    }
    // The silent connection left the pool with its query: a new one serves, through the new path.
    const back = await settleWithin(db.execute(sql`select 1`), connectTimeoutMs + SLACK_MS);
    expect(back.state).toBe("resolved");
    expect(proxy.connections().frozen).toBeGreaterThan(0);
  });

  it("cuts a connection whose query timed out inside a transaction: its ROLLBACK fails at once, and the pool's next query does not wait on it", async () => {
    const queryTimeoutMs = 3_000;
    const connectTimeoutMs = 1_000;
    const { db } = proxiedDatabase({ max: 1, queryTimeoutMs, connectTimeoutMs });
    let queryFailedAt = 0;
    const transaction = db.transaction(async (tx) => {
      await tx.execute(sql`select 1`);
      // The transaction's connection goes silent between two of its queries.
      proxy.freeze();
      await tx.execute(sql`select 'on the silent connection'`).catch((error: unknown) => {
        queryFailedAt = Date.now();
        throw error;
      });
    });
    let failed: Settled;
    try {
      failed = await settleWithin(transaction, 2 * queryTimeoutMs + SLACK_MS);
    } finally {
      proxy.failOver();
    }
    const rollbackMs = Date.now() - queryFailedAt;
    expect({ state: failed.state, unavailable: isDatabaseUnavailable(failed.error) }).toEqual({ state: "rejected", unavailable: true });
    // Sent on the silent connection, the ROLLBACK would wait the whole query timeout again.
    expect(rollbackMs).toBeLessThan(queryTimeoutMs / 2);
    console.log(`a transaction on a silent connection failed after ${failed.ms} ms, ${rollbackMs} ms after its query timed out`);
    // Given back without an error, the connection would be the pool's one, its next query queued behind the dead one's.
    const next = await settleWithin(db.execute(sql`select 'after the failover'`), connectTimeoutMs + SLACK_MS);
    expect(refusal(next)).toEqual({ state: "resolved", unavailable: false, message: undefined });
  });

  it("has the worker's job runner take jobs again on new connections, the ones its pool held silent", async () => {
    const queryTimeoutMs = 2_000;
    const connection = { queryTimeoutMs, connectTimeoutMs: 1_000 };
    const logger = pino({ level: "silent" });
    await clearOfTheCronMinute(30_000);
    const concurrency = 1;
    const start = () => startWorker({ services: testServices(database.db), connectionString: proxied, logger, concurrency, connection });
    const runner = await startLastingRunner(start, logger);
    const jobDone = (jobKey: string) => async () =>
      (await database.pool.query("select 1 from graphile_worker._private_jobs where key = $1", [jobKey])).rowCount === 0;
    try {
      await eventually(cronRegistered, 10_000, "the runner's cron to register its schedule");
      // A runner whose first poll fails fails every poll after (graphile-worker 0.16 keeps the
      // rejected lookup of its task ids, taskIdentifiers.ts): the silence comes once it took a job.
      await addJob(database.db, "apply_schedules", {}, { jobKey: "before-the-silence" });
      await eventually(jobDone("before-the-silence"), 10_000, "a job to run before the silence");
      // Its pool's connections, idle between polls, go silent; connections opened from now on go through.
      proxy.freeze();
      proxy.failOver();
      const frozenAt = Date.now();
      await addJob(database.db, "apply_schedules", {}, { jobKey: "after-the-silence" });
      // A poll on a silent connection fails after the query timeout, and the next is a second later
      // (worker/runner.ts's pollInterval), maybe on another of the pool's silent connections (one
      // per job running, LISTEN's, the cron's); a job whose end met one costs a runner, started anew.
      const silentConnections = concurrency + 2;
      await eventually(jobDone("after-the-silence"), silentConnections * (queryTimeoutMs + 1_000) + SLACK_MS, "the job added after the silence began to run");
      console.log(`a job added as the runner's connections went silent ran ${Date.now() - frozenAt} ms later (query timeout ${queryTimeoutMs} ms)`);
    } finally {
      await runner.stop();
    }
  }, 60_000);

  it("has the worker's liveness lock taken on a new connection when the one it opened went silent", async () => {
    const liveness = holdWorkerLiveness(proxied, pino({ level: "silent" }));
    try {
      const workerId = "frozen-network-test-worker";
      // What the tests before left open is silent: a connection that appears now is the liveness one.
      await eventually(() => proxy.connections().open === proxy.connections().frozen, 5_000, "only silent connections to be left open");
      const frozenBefore = proxy.connections().frozen;
      proxy.freeze();
      // What graphile-worker emits for each worker it creates: the lock is asked for on a connection opened in the silence.
      liveness.events.emit("worker:create", { worker: { workerId }, tasks: {} } as unknown as WorkerEventMap["worker:create"]);
      await eventually(() => proxy.connections().frozen > frozenBefore, 5_000, "the liveness connection to be opened");
      proxy.failOver();
      const frozenAt = Date.now();
      const held = async () => {
        const { rows } = await database.pool.query<{ free: boolean }>("select pg_try_advisory_xact_lock(hashtextextended($1, 0)) as free", [
          workerLivenessLock(workerId),
        ]);
        return !rows[0]!.free;
      };
      // The connection timeout, then the retry a second later.
      await eventually(held, CONNECT_TIMEOUT_MS + 1_000 + SLACK_MS, "the worker's liveness lock to be held");
      console.log(`a liveness lock whose connection went silent was held ${Date.now() - frozenAt} ms later (connection timeout ${CONNECT_TIMEOUT_MS} ms)`);
    } finally {
      await liveness.close();
    }
  });

  it("has web's LISTEN connection and the realtime adapter's listen again within seconds, and hear what is sent after", async () => {
    const channel = "frozen_network_test";
    const heard: string[] = [];
    // When the listener listened: at its start, then each time again.
    const listenedAt: number[] = [];
    const listener = listenToChannels(
      proxied,
      [channel],
      (_channel, payload) => heard.push(payload),
      undefined,
      () => listenedAt.push(Date.now()),
    );
    closers.push(() => listener.close());
    await listener.ready;

    // Two web processes' socket.io servers: `silent`'s adapter reaches the database through the proxy, `other`'s directly.
    const io = (connectionString: string) => {
      const pool = new pg.Pool({ ...connectionSettings(), connectionString, max: 4 });
      guardPoolErrors(pool, () => {});
      const server = new Server(http.createServer(), { adapter: createAdapter(pool) });
      closers.push(
        () => pool.end(),
        () => new Promise((resolve) => server.close(resolve)),
      );
      return server;
    };
    const silent = io(proxied);
    const other = io(database.url);
    const received: string[] = [];
    silent.on("frozen:hello", (text: string) => received.push(text));
    expect(await announceOnceSubscribed([silent.of("/")], 10_000)).toBe(true);
    expect(await announceOnceSubscribed([other.of("/")], 10_000)).toBe(true);
    const adapterListenedAgainAt: number[] = [];
    closers.push(watchAdapterReconnects(silent.of("/"), () => adapterListenedAgainAt.push(Date.now())));

    const notify = (payload: string) => database.pool.query("select pg_notify($1, $2)", [channel, payload]);
    await notify("before");
    other.serverSideEmit("frozen:hello", "before");
    await eventually(() => heard.includes("before") && received.includes("before"), 5_000, "the baseline: a NOTIFY and a broadcast heard");

    proxy.freeze();
    const frozenAt = Date.now();
    await sleep(SILENT_MS);
    // New connections reach the database again; the silent ones stay silent, their server gone.
    proxy.failOver();
    const deadline = frozenAt + NOTICED_WITHIN_MS + ADAPTER_RECONNECTION_DELAY_MS + 2 * SLACK_MS;
    await eventually(() => listenedAt.length === 2, deadline - Date.now(), "web's LISTEN connection (pg-listener.ts) to listen again");
    await eventually(() => adapterListenedAgainAt.length > 0, deadline - Date.now(), "the realtime adapter's LISTEN connection to listen again");
    console.log(
      `${SILENT_MS} ms of silence, then a failover: the listener listened again ${listenedAt[1]! - frozenAt} ms after the silence began, the adapter ${adapterListenedAgainAt[0]! - frozenAt} ms`,
    );

    await notify("after");
    other.serverSideEmit("frozen:hello", "after");
    await eventually(() => heard.includes("after") && received.includes("after"), 5_000, "a NOTIFY and a broadcast sent after the failover to be heard");
  }, 45_000);
});
