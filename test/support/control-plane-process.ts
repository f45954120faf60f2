import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { isReadyMessage } from "../../server/process/readiness";
import { eventually } from "../engine-harness";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export type ControlPlaneProcess = {
  child: ChildProcess;
  /** http://127.0.0.1:<port>: web's API and sockets, or the worker's probes. */
  url: string;
  /** Where its readiness probe answers. */
  healthUrl: string;
  output: () => string;
  /** Whether it told its parent it was ready over the IPC channel, as npm start's supervisor hears it. */
  saidReady: () => boolean;
  exited: Promise<number | null>;
  ready: () => Promise<void>;
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
};

/**
 * A web (server/web.ts) or worker (worker/main.ts) process as `npm run web` and `npm run worker`
 * start them for scale-out, with the environment given (DATABASE_URL, SLIPWAY_MASTER_KEY, …).
 * Logs are JSON lines, kept for assertions. `port` is web's PORT, or the worker's health port.
 * It has an IPC channel, as under npm start, to hear its readiness message.
 */
export function spawnControlPlaneProcess(kind: "web" | "worker", options: { port: number; env: Record<string, string> }): ControlPlaneProcess {
  const script = kind === "web" ? "server/web.ts" : "worker/main.ts";
  const portVariable = kind === "web" ? "PORT" : "SLIPWAY_WORKER_HEALTH_PORT";
  const child = spawn(process.execPath, ["--import", "tsx", path.join(repoRoot, script)], {
    cwd: repoRoot,
    env: {
      ...process.env,
      HOST: "127.0.0.1",
      LOG_LEVEL: "info",
      SLIPWAY_LOG_PRETTY: "0",
      ...options.env,
      [portVariable]: String(options.port),
    },
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  let saidReady = false;
  child.on("message", (message) => (saidReady ||= isReadyMessage(message)));
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let ended = false;
  void exited.then(() => (ended = true));
  const healthUrl = `http://127.0.0.1:${options.port}/api/health/ready`;
  return {
    child,
    url: `http://127.0.0.1:${options.port}`,
    healthUrl,
    output: () => output,
    saidReady: () => saidReady,
    exited,
    ready: () =>
      eventually(
        async () => {
          if (ended) throw new Error(`${kind} exited:\n${output.slice(-3000)}`);
          return (await fetch(healthUrl, { signal: AbortSignal.timeout(2_000) })).status === 200 || undefined;
        },
        60_000,
        `${kind} on port ${options.port} to be ready`,
      ).then(() => undefined),
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
