import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { testToolchainEnv } from "./toolchains";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export type EngineProcess = {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
};

/** The real engine (engine/main.ts) as its own process, as `npm start` or `slipway engine` runs it. */
export function spawnEngine(options: {
  url: string;
  token: string;
  home: string;
  routerPort: number;
  heartbeatSeconds?: number;
  env?: Record<string, string>;
}): EngineProcess {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(repoRoot, "engine/main.ts")], {
    cwd: repoRoot,
    env: {
      ...process.env,
      SLIPWAY_ENGINE_URL: options.url,
      SLIPWAY_ENGINE_TOKEN: options.token,
      SLIPWAY_ENGINE_HOME: options.home,
      SLIPWAY_ROUTER_PORT: String(options.routerPort),
      SLIPWAY_ROUTER_HOST: "127.0.0.1",
      SLIPWAY_HEARTBEAT_SECONDS: String(options.heartbeatSeconds ?? 1),
      LOG_LEVEL: "info",
      ...testToolchainEnv,
      ...options.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    child,
    output: () => output,
    exited,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
