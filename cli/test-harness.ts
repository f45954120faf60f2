import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import { afterAll } from "vitest";
import { createTestDatabase, type TestDatabase } from "../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../test/support/seed";
import type { Services } from "../server/context";
import type { DeploymentEvent } from "../engine/protocol/events";
import { recordEngineEvents } from "../server/engines/engine-session";
import { startWebServer } from "../server/web-server";
import type { Env } from "./config";
import type { Input } from "./context";
import { runCli } from "./main";

/**
 * The CLI against the real control plane: a fresh database, the real web server on an
 * ephemeral port, a seeded organization, and `runCli` driven in-process with captured output
 * and a config file of its own.
 */
export type CliHarness = {
  database: TestDatabase;
  services: Services;
  org: SeededOrganization;
  url: string;
  ownerToken: string;
  configFile: string;
  /** Runs a command to its end. */
  cli(args: string[], options?: RunOptions): Promise<CliResult>;
  /** Starts a command and returns at once, to act on the control plane while it runs. */
  start(args: string[], options?: RunOptions): RunningCli;
  /** Stops the web server as a crash would: open connections are cut, nothing answers on its port. */
  stopServer(): Promise<void>;
  /** Starts the web server again on the same port, as the supervisor of `npm start` does. */
  startServer(): Promise<void>;
  /** Plays the seeded cluster's engine: see EnginePlayer. */
  engine: EnginePlayer;
};

/**
 * The engine's side of a deployment, played by a test: events numbered as an engine numbers them
 * (one sequence per harness), recorded through the function the engine gateway calls.
 */
export type EnginePlayer = {
  event(serviceId: string | null, step: DeploymentEvent["step"], status: DeploymentEvent["status"], extra?: Partial<DeploymentEvent>): DeploymentEvent;
  record(deploymentId: string, events: DeploymentEvent[]): Promise<void>;
};

export type RunOptions = {
  env?: Env;
  signal?: AbortSignal;
  /** What the command reads from standard input (piped, not a terminal); none when absent. */
  stdin?: string;
  /** `stdin` is typed at a terminal (isTTY), as a prompt needs. */
  terminal?: boolean;
  /** Stands in for the user's browser (`slipway open`): no test opens one on the host. */
  openUrl?: (url: string) => Promise<void>;
};
export type CliResult = { code: number; stdout: string; stderr: string };
export type RunningCli = {
  /** Waits until stdout matches, and returns the match. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Waits until stderr matches (the CLI's notes while following), and returns the match. */
  waitForStderr(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  readonly stdout: string;
  done: Promise<CliResult>;
};

/** `overrides`: the control plane's services as a test needs them (the repository check turned on, say). */
export async function startCliHarness(overrides: Partial<Services> = {}): Promise<CliHarness> {
  const database = await createTestDatabase();
  const services = testServices(database.db, overrides);
  const org = await seedOrganization(services);
  const listen = (port: number) => startWebServer({ services, databaseUrl: database.url, logger: pino({ level: "silent" }), port });
  let server: Awaited<ReturnType<typeof listen>> | null = await listen(0);
  const { port, url } = server;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-cli-"));
  const configFile = path.join(dir, "config", "slipway.json");
  const stopServer = async () => {
    const stopping = server;
    server = null;
    await stopping?.close();
  };
  afterAll(async () => {
    await stopServer();
    await fs.rm(dir, { recursive: true, force: true });
  });

  const start = (args: string[], options: RunOptions = {}): RunningCli => {
    let stdout = "";
    let stderr = "";
    const io = {
      stdout: { write: (chunk: string) => (stdout += chunk) },
      stderr: { write: (chunk: string) => (stderr += chunk) },
      // HOME too, so nothing falls back to the real user's config.
      env: { HOME: dir, SLIPWAY_CONFIG: configFile, ...options.env },
      signal: options.signal,
      pollIntervalMs: 50,
      ...(options.openUrl ? { openUrl: options.openUrl } : {}),
      // A Readable is what process.stdin is; its listener types are only wider than Input says.
      ...(options.stdin !== undefined
        ? { stdin: Object.assign(Readable.from([Buffer.from(options.stdin)]), { isTTY: options.terminal }) as unknown as Input }
        : {}),
    };
    const done = runCli(args, io).then((code) => ({ code, stdout, stderr }));
    let finished = false;
    void done.finally(() => (finished = true));
    const waitForOutput = async (stream: "stdout" | "stderr", pattern: RegExp, timeoutMs = 10_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const match = (stream === "stdout" ? stdout : stderr).match(pattern);
        if (match) return match;
        if (finished || Date.now() > deadline) throw new Error(`${stream} never matched ${pattern}:\n${stdout}\nstderr:\n${stderr}`);
        await sleep(20);
      }
    };
    return {
      get stdout() {
        return stdout;
      },
      waitFor: (pattern, timeoutMs) => waitForOutput("stdout", pattern, timeoutMs),
      waitForStderr: (pattern, timeoutMs) => waitForOutput("stderr", pattern, timeoutMs),
      done,
    };
  };

  let seq = 0;
  const engine: EnginePlayer = {
    event: (serviceId, step, status, extra = {}) => ({ seq: ++seq, serviceId, step, status, at: new Date().toISOString(), ...extra }),
    record: async (deploymentId, events) => {
      await recordEngineEvents(services, org.clusterId, deploymentId, events);
    },
  };

  return {
    database,
    services,
    org,
    engine,
    url,
    ownerToken: await org.apiToken("OWNER"),
    configFile,
    start,
    cli: (args, options) => start(args, options).done,
    stopServer,
    async startServer() {
      if (server) throw new Error("the web server is already running");
      server = await listen(port);
    },
  };
}
