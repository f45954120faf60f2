import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { testPort } from "./support/ports";
import type { z } from "zod";
import { createLocalEngine, type Engine, type EngineReporter, type LocalEngineOptions } from "../engine/core";
import type {
  ApplicationServiceSpec,
  DatabaseEngine,
  DatabaseServiceSpec,
  DeploymentAction,
  EngineTask,
  JobServiceSpec,
  LogStream,
  ServiceSpec,
  Snapshot,
} from "../engine/protocol";
import { applicationConfig, jobConfig } from "../engine/protocol";
import { removeEngineHome } from "./process-cleanup";
import { testToolchains } from "./support/toolchains";

export const fixturesDir = fileURLToPath(new URL("./fixtures/apps/", import.meta.url));
export const fixture = (name: string) => path.join(fixturesDir, name);

export type ReportedEvent = Parameters<EngineReporter["event"]>[1] & { deploymentId: string };
export type ReportedLine = { stream: LogStream; fd: string; text: string };

/** A reporter that keeps everything, for assertions. */
export function recordingReporter() {
  const events: ReportedEvent[] = [];
  const lines: ReportedLine[] = [];
  let seq = 0;
  const reporter: EngineReporter = {
    event: (deploymentId, event) => void events.push({ deploymentId, ...event }),
    nextSeq: () => ++seq,
    // Kept is stored: the runtime may save how far it read.
    log: (stream, fd, text, _at, origin) => {
      lines.push({ stream, fd, text });
      origin?.stored();
    },
  };
  return {
    reporter,
    events,
    lines,
    eventsOf: (deploymentId: string) => events.filter((event) => event.deploymentId === deploymentId),
    final: (deploymentId: string) =>
      events.filter((event) => event.deploymentId === deploymentId && event.step === "deployment" && event.status !== "started").at(-1),
  };
}

/**
 * An engine home (in a temp dir unless given), a router port, and cleanup of everything started
 * under it. Its engines install no toolchain unless `toolchains` says where from (test/support/toolchains.ts).
 */
export async function engineHome(
  tuning: LocalEngineOptions["tuning"] = { drainTimeoutMs: 5_000, stopGraceMs: 3_000 },
  given?: string,
  toolchains: LocalEngineOptions["toolchains"] = testToolchains,
) {
  const home = given ?? (await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), "slipway-engine-"))));
  const routerPort = await testPort();
  const engines: Engine[] = [];
  const recording = recordingReporter();
  return {
    home,
    routerPort,
    ...recording,
    newEngine(reporter: EngineReporter = recording.reporter, options: Pick<LocalEngineOptions, "concurrency"> = {}): Engine {
      const engine = createLocalEngine({ home, routerPort, reporter, tuning, toolchains, ...options });
      engines.push(engine);
      return engine;
    },
    /** GET through the router with a Host header. */
    get: (host: string, urlPath = "/") => request(routerPort, host, urlPath),
    async cleanup() {
      await Promise.all(engines.map((engine) => engine.shutdown().catch(() => undefined)));
      await removeEngineHome(home);
    },
  };
}

export function request(port: number, host: string, urlPath = "/"): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path: urlPath, headers: { host }, agent: false, timeout: 5_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
  });
}

/** A service spec as the control plane would send it; config goes through the snapshot schema's defaults. */
export function service(overrides: Partial<Omit<ApplicationServiceSpec, "config">> & { config: z.input<typeof applicationConfig> }): ApplicationServiceSpec {
  const name = overrides.name ?? "web";
  return {
    id: randomUUID(),
    name,
    kind: "APPLICATION",
    variables: [],
    domains: [`${name}-test.localhost`],
    ...overrides,
    config: applicationConfig.parse({ healthCheckTimeoutSeconds: 15, ...overrides.config }),
  };
}

/** A DATABASE service spec with the connection the control plane would have generated. */
export async function database(
  engine: DatabaseEngine,
  overrides: Partial<Omit<DatabaseServiceSpec, "config">> & { copyDataFrom?: string; password?: string } = {},
): Promise<DatabaseServiceSpec> {
  const { copyDataFrom, password, ...rest } = overrides;
  const name = rest.name ?? "db";
  return {
    id: randomUUID(),
    name,
    kind: "DATABASE",
    variables: [],
    domains: [],
    ...rest,
    config: {
      engine,
      connection: {
        port: await testPort(),
        user: name.replace(/-/g, "_"),
        password: password ?? randomUUID(),
        database: name.replace(/-/g, "_"),
      },
      ...(copyDataFrom ? { copyDataFrom: { serviceId: copyDataFrom } } : {}),
    },
  };
}

/** A JOB service spec; config goes through the snapshot schema's defaults. */
export function job(overrides: Partial<Omit<JobServiceSpec, "config">> & { config: z.input<typeof jobConfig> }): JobServiceSpec {
  return { id: randomUUID(), name: "job", kind: "JOB", variables: [], domains: [], ...overrides, config: jobConfig.parse(overrides.config) };
}

/** The environment every task() belongs to unless told otherwise (jobs' outputs are kept per environment). */
export const TEST_ENVIRONMENT_ID = randomUUID();

export function task(
  action: DeploymentAction,
  services: ServiceSpec[],
  deploymentId = randomUUID(),
  environmentId = TEST_ENVIRONMENT_ID,
  stages?: Snapshot["stages"],
): EngineTask {
  return {
    deploymentId,
    attempt: 1,
    snapshot: {
      version: 1,
      action,
      organizationId: randomUUID(),
      project: { id: randomUUID(), name: "shop" },
      environment: { id: environmentId, name: "test", mode: "DEVELOPMENT" },
      cluster: { id: randomUUID(), domainSuffix: "localhost" },
      services,
      ...(stages ? { stages } : {}),
    },
  };
}

/** Polls until `check` returns a value (not undefined/false) or the timeout passes. */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 10_000, what = "condition"): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== null && value !== false) return value as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await sleep(100);
  }
}

/**
 * Resolves once the engine's crash-restart supervisor has looked at its live releases `count`
 * more times: what a test waits for to show that the engine saw a release and left it alone.
 */
export function supervisionPasses(engine: Engine, count = 2, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = 0;
    const timer = setTimeout(() => {
      engine.events.off("supervision:pass", onPass);
      reject(new Error(`timed out waiting for ${count} supervision passes (saw ${seen})`));
    }, timeoutMs);
    const onPass = () => {
      if (++seen < count) return;
      clearTimeout(timer);
      engine.events.off("supervision:pass", onPass);
      resolve();
    };
    engine.events.on("supervision:pass", onPass);
  });
}
