import { setTimeout as sleep } from "node:timers/promises";
import type pino from "pino";
import type { ServiceSpec } from "../protocol";
import type { RouterClient } from "../router/router-process";
import { upstreamKey } from "../router/routes";
import type { LiveRelease, PendingRelease, ReleaseStore, ServiceRecord, SleepSetting } from "./release-store";

/**
 * Sleep when idle (issue 16, part 3). A service with `sleepAfterMinutes` whose router saw no
 * request for that long is put to sleep: its route is marked sleeping first (from then on the
 * router holds its requests and asks for a wake), its open requests finish, then its release
 * stops; its state is kept. A request to a sleeping service makes the router ask (a long poll,
 * `/wakes`): the release starts again, passes its health check, and the router lets the held
 * requests through. A request arriving while the release stops is held like any other and wakes
 * it once the stop is done (the service's lock orders the two), so none is lost.
 */

export type SleepDriver<R extends LiveRelease, St extends ServiceRecord<R>> = {
  /** Stops the live release to sleep; the state says sleeping already. */
  sleep(state: St, current: R): Promise<void>;
  /** Starts the sleeping release again; resolves once it passes its health check, else throws (having stopped it). */
  wake(state: St, current: R): Promise<R>;
  /** Under the service's lock, before its state is written: `state.current` serves from now on. */
  wentLive?(state: St, how: "switch" | "restart"): void;
};

export type IdleSleepOptions = {
  /** The length of a minute of `sleepAfterMinutes`: 60 000 ms but in tests, which shorten it to see the real mechanism in seconds. */
  minuteMs?: number;
  logger: pino.Logger;
};

/** What a service spec asks of sleep: the services that serve through the router, APPLICATION and CONTAINER (a JOB or DATABASE never sleeps). */
export function sleepSettingOf(service: ServiceSpec): SleepSetting | undefined {
  if ((service.kind !== "APPLICATION" && service.kind !== "CONTAINER") || !service.config.sleepAfterMinutes) return undefined;
  const { sleepAfterMinutes, healthCheckPath, healthCheckTimeoutSeconds } = service.config;
  return { afterMinutes: sleepAfterMinutes, ...(healthCheckPath ? { healthCheckPath } : {}), healthCheckTimeoutSeconds };
}

export class IdleSleep<R extends LiveRelease, St extends ServiceRecord<R>, P extends PendingRelease<R>> {
  /** Since when each service is awake (went live, woke, or the engine started): idleness counts from there at the earliest. */
  private readonly awakeSince = new Map<string, number>();
  private readonly waking = new Map<string, Promise<void>>();
  private readonly stopped = new AbortController();
  private readonly startedAt = Date.now();
  private loops: Promise<unknown> | null = null;

  constructor(
    private readonly parts: {
      store: ReleaseStore<R, St, P>;
      driver: SleepDriver<R, St>;
      router: Pick<RouterClient, "stats" | "wakes">;
      /** Waits until the router has no open request to the port. */
      drained: (port: number) => Promise<number>;
    } & IdleSleepOptions,
  ) {}

  private get minuteMs(): number {
    return this.parts.minuteMs ?? 60_000;
  }

  start(): void {
    this.loops = Promise.all([this.watchIdle(), this.answerWakes()]);
  }

  async shutdown(): Promise<void> {
    this.stopped.abort();
    await this.loops;
    await Promise.all(this.waking.values());
  }

  /** A release went live (deployed, restarted, woken): it is awake from now. */
  awake(serviceId: string): void {
    this.awakeSince.set(serviceId, Date.now());
  }

  private async watchIdle(): Promise<void> {
    // A few looks per minute of the setting: a service sleeps within a quarter minute of its time.
    const everyMs = Math.min(Math.max(this.minuteMs / 4, 100), 15_000);
    while (!this.stopped.signal.aborted) {
      await sleep(everyMs, undefined, { signal: this.stopped.signal }).catch(() => undefined);
      if (this.stopped.signal.aborted) return;
      try {
        await this.sleepIdleServices();
      } catch (error) {
        this.parts.logger.warn({ err: error }, "could not check idle services");
      }
    }
  }

  private async sleepIdleServices(): Promise<void> {
    const candidates = [...this.parts.store.values()].filter((state) => state.status === "running" && state.sleep && state.current);
    if (candidates.length === 0) return;
    const stats = await this.parts.router.stats();
    const now = Date.now();
    for (const state of candidates) {
      const current = state.current!;
      const key = upstreamKey({ host: "127.0.0.1", port: current.port });
      if ((stats.inFlight[key] ?? 0) > 0 || (stats.websockets[key] ?? 0) > 0) continue;
      const lastRequest = stats.services[state.serviceId]?.lastRequestAt ?? 0;
      const since = Math.max(lastRequest, this.awakeSince.get(state.serviceId) ?? this.startedAt);
      if (now - since >= state.sleep!.afterMinutes * this.minuteMs) await this.fallAsleep(state.serviceId, now);
    }
  }

  /** `decidedAt`: when the service was found idle; a release that went live since (it waited for the lock) stays awake. */
  private fallAsleep(serviceId: string, decidedAt: number): Promise<void> {
    const { store, driver } = this.parts;
    return store.withLock(serviceId, async () => {
      const state = store.get(serviceId);
      const current = state?.current;
      // A deploy, stop or wake came first.
      if (!state || !current || state.status !== "running" || !state.sleep) return;
      if ((this.awakeSince.get(serviceId) ?? 0) >= decidedAt) return;
      // Sleeping first: the router holds new requests from here; the open ones finish before the stop.
      state.status = "sleeping";
      await store.persist(serviceId);
      await store.syncRoutes();
      await this.parts.drained(current.port);
      await driver.sleep(state, current);
      this.parts.logger.info({ serviceId, releaseId: current.releaseId }, "service fell asleep");
    });
  }

  private async answerWakes(): Promise<void> {
    while (!this.stopped.signal.aborted) {
      let serviceIds: string[];
      try {
        serviceIds = await this.parts.router.wakes(this.stopped.signal);
      } catch (error) {
        if (this.stopped.signal.aborted) return;
        // The router restarting: it holds requests meanwhile, and asks again for each new one.
        this.parts.logger.warn({ err: error }, "could not read the router's wake requests");
        await sleep(1_000, undefined, { signal: this.stopped.signal }).catch(() => undefined);
        continue;
      }
      for (const serviceId of serviceIds) this.wake(serviceId);
    }
  }

  private wake(serviceId: string): void {
    if (this.waking.has(serviceId)) return;
    const { store, driver } = this.parts;
    const woken = store
      .withLock(serviceId, async () => {
        const state = store.get(serviceId);
        const current = state?.current;
        if (!state || !current || state.status !== "sleeping") return;
        const started = Date.now();
        const fresh = await driver.wake(state, current);
        // Awake before it shows running: the idle check must not count from before the wake.
        this.awake(serviceId);
        state.current = fresh;
        state.status = "running";
        driver.wentLive?.(state, "restart");
        await store.persist(serviceId);
        await store.syncRoutes();
        this.parts.logger.info({ serviceId, releaseId: fresh.releaseId, ms: Date.now() - started }, "service woke up");
      })
      // It stays asleep; the requests held time out, and the next request asks again.
      .catch((error: unknown) => this.parts.logger.warn({ err: error, serviceId }, "could not wake the service"))
      .finally(() => this.waking.delete(serviceId));
    this.waking.set(serviceId, woken);
  }
}
