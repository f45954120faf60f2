import type pino from "pino";
import type { EngineEvents } from "../../engine-events";
import { memoryLimitOf, oomKills } from "./cgroups";
import type { ServiceState } from "./layout";
import type { LocalStore, ReleaseProcesses } from "./release-processes";

/** A process that stayed up this long has recovered: its next crash restarts after the base delay again. */
const HEALTHY_UPTIME_MS = 30_000;

/**
 * The local runtime's crash-restart policy: a live release whose process died is marked crashed
 * and started again after a delay that doubles with each crash in a row (capped), the way a
 * container engine's restart policy would. The docker runtime leaves this to the container
 * engine's own restart policy.
 */
export class CrashRestarts {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly streaks = new Map<string, number>();
  private supervisor: NodeJS.Timeout | null = null;

  constructor(
    private readonly options: {
      store: LocalStore;
      processes: ReleaseProcesses;
      logger: pino.Logger;
      serviceLog: (serviceId: string, releaseId: string, text: string) => void;
      backoffBaseMs?: number;
      backoffMaxMs?: number;
      events?: EngineEvents;
    },
  ) {}

  /** Checks the live releases twice a second. */
  start(): void {
    this.supervisor = setInterval(() => this.supervise(), 500);
    this.supervisor.unref();
  }

  shutdown(): void {
    if (this.supervisor) clearInterval(this.supervisor);
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  /** A deploy, stop, restart or delete decided otherwise: no restart is pending any more. */
  cancel(serviceId: string): void {
    const timer = this.timers.get(serviceId);
    if (timer) clearTimeout(timer);
    this.timers.delete(serviceId);
  }

  /** A new or restarted release: its first crash restarts after the base delay. */
  reset(serviceId: string): void {
    this.streaks.delete(serviceId);
  }

  private supervise(): void {
    const { store, processes } = this.options;
    let checked = 0;
    let restarting = 0;
    for (const state of store.values()) {
      const proc = state.current;
      if (!proc || state.status !== "running" || this.timers.has(state.serviceId) || store.busy(state.serviceId)) continue;
      checked += 1;
      // A child whose exit event is still due is handled by the next pass, with its exit code.
      if (processes.isAlive(proc) || processes.exitPending(proc)) continue;
      restarting += 1;
      // The kernel's OOM killer sends SIGKILL: the group's counter tells it from any other kill.
      const oomKilled = proc.cgroups ? oomKills(proc.cgroups) > 0 : false;
      const limit = proc.cgroups ? memoryLimitOf(proc.cgroups) : null;
      const reason = oomKilled
        ? `was killed for exceeding its memory limit${limit ? ` of ${Math.round(limit / 1024 / 1024)} MiB` : ""}`
        : processes.exitReason(proc);
      state.lastRestart = { at: new Date().toISOString(), reason, ...(oomKilled ? { oomKilled } : {}) };
      // Up long enough counts as recovered: the next crash starts the backoff over.
      if (Date.now() - Date.parse(proc.startedAt) > HEALTHY_UPTIME_MS) this.streaks.delete(state.serviceId);
      state.status = "crashed";
      state.restarts += 1;
      store.persistInBackground(state.serviceId);
      this.schedule(state, `it ${reason}`);
    }
    this.options.events?.emit("supervision:pass", { checked, restarting });
  }

  /** Restarts the crashed release after the backoff delay (also for one the previous engine left crashed). */
  schedule(state: ServiceState, why: string): void {
    const streak = this.streaks.get(state.serviceId) ?? 0;
    this.streaks.set(state.serviceId, streak + 1);
    const delay = Math.min((this.options.backoffBaseMs ?? 1_000) * 2 ** streak, this.options.backoffMaxMs ?? 30_000);
    const releaseId = state.current?.releaseId ?? "";
    this.options.serviceLog(
      state.serviceId,
      releaseId,
      `[slipway] the process of release ${releaseId} stopped unexpectedly (${why}); restarting in ${delay / 1000}s`,
    );
    this.options.logger.warn({ serviceId: state.serviceId, releaseId, delay }, "release crashed");
    const timer = setTimeout(() => {
      void this.options.store
        .withLock(state.serviceId, () => this.restartCrashed(state.serviceId, releaseId))
        .catch((error: unknown) => {
          this.options.logger.error({ err: error, serviceId: state.serviceId }, "restart failed");
          const current = this.options.store.get(state.serviceId);
          if (current?.status === "crashed") this.schedule(current, `the restart failed: ${(error as Error).message}`);
        })
        .finally(() => {
          if (this.timers.get(state.serviceId) === timer) this.timers.delete(state.serviceId);
        });
    }, delay);
    timer.unref();
    this.timers.set(state.serviceId, timer);
  }

  private async restartCrashed(serviceId: string, releaseId: string): Promise<void> {
    const { store, processes } = this.options;
    const state = store.get(serviceId);
    // A deploy, stop or delete since the crash decided otherwise.
    if (!state?.current || state.status !== "crashed" || state.current.releaseId !== releaseId) return;
    const launch = await processes.readLaunch(serviceId, releaseId);
    if (!launch) throw new Error(`release ${releaseId} has no launch file`);
    const previousPort = state.current.port;
    await processes.forget(serviceId, state.current);
    state.current = await processes.spawn(serviceId, releaseId, launch, state.current.commit, previousPort);
    state.status = "running";
    await store.persist(serviceId);
    if (state.current.port !== previousPort) await store.syncRoutes();
  }
}
