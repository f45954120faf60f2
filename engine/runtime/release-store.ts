import fs from "node:fs/promises";
import type pino from "pino";
import { z } from "zod";
import { type KnownService, type RoutesTable, routesTableOf } from "../router/routes";
import type { ReleaseHandle } from "./runtime";
import { SerialQueues } from "./serial";
import { readJson, writeJsonAtomic } from "./shared/files";

/** A release that serves (or served): where the router sends its service's traffic. */
export type LiveRelease = { releaseId: string; port: number; commit?: string };

/** What every runtime keeps of a service that has a release, on disk so that the next engine adopts it. */
export type ServiceRecord<R extends LiveRelease> = {
  serviceId: string;
  name: string;
  domains: string[];
  /** The release the router sends traffic to (or would, once started again). */
  current: R | null;
  status: "starting" | "running" | "crashed" | "stopped" | "sleeping";
  /** Sleep when idle (issue 16): after how many minutes without a request, and how a wake checks the release serves. */
  sleep?: SleepSetting;
  /** Restarts of the live release, reported with the service's state. */
  restarts: number;
  lastRestart?: { at: string; reason: string; oomKilled?: boolean };
};

/** As each runtime's state file keeps it. */
export const sleepSetting = z.object({ afterMinutes: z.number(), healthCheckPath: z.string().optional(), healthCheckTimeoutSeconds: z.number() });
export type SleepSetting = z.infer<typeof sleepSetting>;

/** The record of a service whose new release just went live (the count of restarts is about the live release: it starts from zero, as on Heroku). */
export function liveRecord<R extends LiveRelease>(service: { id: string; name: string; domains: string[] }, live: R): ServiceRecord<R> & { status: "running" } {
  return {
    serviceId: service.id,
    name: service.name,
    domains: service.domains.map((domain) => domain.toLowerCase()),
    current: live,
    status: "running",
    restarts: 0,
  };
}

/** A release on its way to going live, between newRelease and the switch; runtimes extend it with what their steps record. */
export type PendingRelease<R extends LiveRelease> = ReleaseHandle & {
  /** Where the release's checkout and build happen. */
  dir: string;
  appDir?: string;
  /** Set by the start step. */
  live?: R;
  /** The start step kept the running release (a database whose configuration did not change): the switch replaces nothing. */
  reused?: boolean;
};

/** Where a runtime's routes go: the engine's router process (engine/router/). */
export type RouteTarget = { putRoutes(table: RoutesTable): Promise<void> };

/** The key route table writes queue under (beside each service's own state writes). */
const ROUTES = "\u0000routes";
/** The key writes of the known services' file queue under. */
const KNOWN = "\u0000known";

const knownServices = z.array(z.object({ serviceId: z.string(), name: z.string(), domains: z.array(z.string()) }));

/**
 * A runtime's services and releases: the state of each service (persisted as JSON, one file per
 * service), the route table derived from them, the releases being deployed, and one lock per
 * service so that its deploy, stop, restart and crash restarts never interleave.
 */
export class ReleaseStore<R extends LiveRelease, St extends ServiceRecord<R>, P extends PendingRelease<R>> {
  private readonly states = new Map<string, St>();
  private readonly pending = new Map<string, P>();
  /**
   * Every service a deployment named, so that the hostnames of one whose first deployment is
   * under way or failed answer "not deployed yet" rather than "no service here" (routes.ts).
   */
  private readonly known = new Map<string, KnownService>();
  /** Operations on one service, one at a time. */
  private readonly locks = new SerialQueues();
  /** State file writes per key (each service's, the route table's, jobs'), each in order. */
  readonly writes = new SerialQueues();

  constructor(
    private readonly options: {
      stateFile: (serviceId: string) => string;
      /** Where the known services are kept for the next engine; in memory only without it. */
      knownServicesFile?: string;
      routes: RouteTarget;
      logger: pino.Logger;
    },
  ) {}

  /** Takes up the state a previous engine wrote; null when the file is missing. */
  async adopt(file: string, schema: z.ZodType<St>): Promise<St | null> {
    const state = await readJson(file, schema);
    if (state) this.states.set(state.serviceId, state);
    return state;
  }

  /** Takes up the services a previous engine knew (the file may be missing; an unreadable one costs only their "not deployed yet" pages). */
  async adoptKnown(): Promise<void> {
    const file = this.options.knownServicesFile;
    if (!file) return;
    const services = await readJson(file, knownServices).catch((error: unknown) => {
      this.options.logger.warn({ err: error, file }, "could not read the known services; those never deployed answer 404 until deployed again");
      return null;
    });
    for (const service of services ?? []) this.known.set(service.serviceId, service);
  }

  /**
   * Records a service a deployment names (its hostnames as they are now) and, when it has no
   * release yet, routes them to the router's "not deployed yet". A router that does not take
   * the table now is only logged: the deployment's switch fails on it, saying so.
   */
  async know(service: { id: string; name: string; domains: string[] }): Promise<void> {
    const domains = service.domains.map((domain) => domain.toLowerCase());
    const before = this.known.get(service.id);
    if (before && before.name === service.name && before.domains.join() === domains.join()) return;
    this.known.set(service.id, { serviceId: service.id, name: service.name, domains });
    await this.persistKnown().catch((error: unknown) => this.options.logger.error({ err: error, serviceId: service.id }, "could not save the known services"));
    if (this.states.has(service.id)) return;
    await this.syncRoutes().catch((error: unknown) =>
      this.options.logger.warn({ err: error, serviceId: service.id }, "the router did not take the routes of a service not deployed yet"),
    );
  }

  private persistKnown(): Promise<void> {
    const file = this.options.knownServicesFile;
    if (!file) return Promise.resolve();
    return this.writes.run(KNOWN, () => writeJsonAtomic(file, [...this.known.values()]));
  }

  get(serviceId: string): St | undefined {
    return this.states.get(serviceId);
  }

  set(state: St): void {
    this.states.set(state.serviceId, state);
  }

  /** Forgets the service (its state, and that it exists: its hostnames go from the routes). */
  delete(serviceId: string): St | undefined {
    const state = this.states.get(serviceId);
    this.states.delete(serviceId);
    if (this.known.delete(serviceId))
      this.persistKnown().catch((error: unknown) => this.options.logger.error({ err: error, serviceId }, "could not save the known services"));
    return state;
  }

  values(): IterableIterator<St> {
    return this.states.values();
  }

  /** Writes the service's state; writes are chained so the file always ends with the latest. */
  persist(serviceId: string): Promise<void> {
    return this.writes.run(serviceId, async () => {
      const state = this.states.get(serviceId);
      if (state) await writeJsonAtomic(this.options.stateFile(serviceId), state);
    });
  }

  /**
   * `persist` for callers that go on without waiting (a supervision pass, a log batch's offsets):
   * a write that fails (a full disk) is logged instead of ending the engine as an unhandled
   * rejection, and the service's next write saves its whole state again.
   */
  persistInBackground(serviceId: string): void {
    this.persist(serviceId).catch((error: unknown) => this.options.logger.error({ err: error, serviceId }, "could not save the service's state"));
  }

  /**
   * Puts the service's state back as it was before an operation (`undefined`: it had none), in
   * memory and on disk, so an operation that failed halfway leaves no trace an engine restart
   * would act on.
   */
  restore(serviceId: string, before: St | undefined): Promise<void> {
    if (before) this.states.set(serviceId, before);
    else this.states.delete(serviceId);
    return this.writes.run(serviceId, async () => {
      const state = this.states.get(serviceId);
      if (state) await writeJsonAtomic(this.options.stateFile(serviceId), state);
      else await fs.rm(this.options.stateFile(serviceId), { force: true });
    });
  }

  /** Hands the router the routes of every service as they stand now (a stopped one routes to nothing). */
  syncRoutes(): Promise<void> {
    const table = routesTableOf(this.states.values(), this.known.values());
    return this.writes.run(ROUTES, () => this.options.routes.putRoutes(table));
  }

  withLock<T>(serviceId: string, work: () => Promise<T>): Promise<T> {
    return this.locks.run(serviceId, work);
  }

  /** Whether an operation on the service is queued or running (supervision leaves it alone then). */
  busy(serviceId: string): boolean {
    return this.locks.busy(serviceId);
  }

  addPending(release: P): void {
    this.pending.set(pendingKey(release), release);
  }

  pendingOf(handle: ReleaseHandle): P {
    const release = this.pending.get(pendingKey(handle));
    if (!release) throw new Error(`unknown release ${handle.releaseId} of service ${handle.serviceId}`);
    return release;
  }

  /** Whether the release is on its way to going live (its directory is in use, though it may hold nothing yet). */
  isPending(handle: ReleaseHandle): boolean {
    return this.pending.has(pendingKey(handle));
  }

  /** Forgets a pending release (it went live or was discarded); undefined when it was not pending. */
  takePending(handle: ReleaseHandle): P | undefined {
    const release = this.pending.get(pendingKey(handle));
    this.pending.delete(pendingKey(handle));
    return release;
  }
}

/**
 * Release ids are unique per service only (a time stamp and the deployment's id): the services of
 * one deployment, deployed side by side (issue 16), have pending releases of the same id.
 */
function pendingKey(handle: ReleaseHandle): string {
  return `${handle.serviceId}/${handle.releaseId}`;
}
