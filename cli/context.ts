import { setTimeout as sleep } from "node:timers/promises";
import { ApiClient } from "./client";
import { loadConfig, type CliConfig, type Env } from "./config";
import { exitCodes, type ExitCode } from "./errors";
import { DEFAULT_RECONNECT_TIMEOUT_MS } from "./reconnect";

export type Output = { write(chunk: string): unknown; columns?: number; rows?: number };

/** The process's standard input, for `slipway shell` (a terminal in raw mode, or piped input). */
export type Input = {
  isTTY?: boolean;
  setRawMode?: (mode: boolean) => unknown;
  on(event: "data", listener: (chunk: Buffer | string) => void): unknown;
  on(event: "end", listener: () => void): unknown;
  off(event: "data" | "end", listener: (...args: never[]) => void): unknown;
  resume(): unknown;
  pause(): unknown;
};

/** Everything the CLI touches of its process, so tests run it in-process with their own. */
export type CliIo = {
  stdout: Output;
  stderr: Output;
  env: Env;
  /** Absent in tests and wherever no input should be read. */
  stdin?: Input;
  /** Ends `--follow` and `--watch` (Ctrl-C in the real process) and aborts requests in flight. */
  signal?: AbortSignal;
  /**
   * Runs an engine in this process. bin/slipway.js provides it; the CLI itself never loads
   * engine code (the engine is a separate program that talks only through its protocol).
   */
  startEngine?: (env: Env) => Promise<void>;
  /** Opens a URL in the user's browser (`slipway open`): the `open` package unless a test records it instead. */
  openUrl?: (url: string) => Promise<void>;
  /** How often `--watch` and `--follow` poll; 500 ms unless a test wants it faster. */
  pollIntervalMs?: number;
};

/** What a command's action gets: output helpers, the configured API client, the poll clock. */
export class Context {
  private client: Promise<ApiClient> | null = null;
  /** Set by commands whose outcome is not just "it worked" (a watched deployment that failed). */
  exitCode: ExitCode | number = exitCodes.ok;
  /** How long a follow waits for a lost control plane (`--reconnect-timeout`, set before the action runs). */
  reconnectTimeoutMs = DEFAULT_RECONNECT_TIMEOUT_MS;

  constructor(readonly io: CliIo) {}

  get pollIntervalMs(): number {
    return this.io.pollIntervalMs ?? 500;
  }

  print(text: string): void {
    this.io.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
  }

  /** Progress that is not the command's output (a lost control plane, say): stderr, so stdout stays parseable. */
  note(text: string): void {
    this.io.stderr.write(`${text}\n`);
  }

  /** `--json`: the raw API objects, pretty enough to read and exact enough for `jq`. */
  printJson(value: unknown): void {
    this.io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** Streams (`--watch --json`, `logs --json`) print one JSON object per line. */
  printJsonLine(value: unknown): void {
    this.io.stdout.write(`${JSON.stringify(value)}\n`);
  }

  config(): Promise<CliConfig> {
    return loadConfig(this.io.env);
  }

  api(): Promise<ApiClient> {
    this.client ??= this.config().then((config) => this.clientFor(config));
    return this.client;
  }

  clientFor(config: CliConfig): ApiClient {
    return new ApiClient({ ...config, signal: this.io.signal });
  }

  get aborted(): boolean {
    return this.io.signal?.aborted ?? false;
  }

  /** Waits one poll interval (or `ms`); false when the command was stopped meanwhile. */
  async pause(ms: number = this.pollIntervalMs): Promise<boolean> {
    try {
      await sleep(ms, undefined, { signal: this.io.signal });
      return true;
    } catch {
      return false;
    }
  }
}
