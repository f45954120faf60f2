import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { httpStatus } from "../shared/http-probe";

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.setTimeout(1_000, () => socket.destroy());
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
    socket.once("close", () => resolve(false));
  });
}

/**
 * Waits until the release is healthy: a 2xx/3xx answer to GET `path` when the service has a
 * health check path, else a port that accepts connections. Returns null when healthy, else why not.
 */
export async function waitHealthy(options: {
  port: number;
  path?: string;
  timeoutMs: number;
  signal: AbortSignal;
  /** Returns a reason when the process died, so a crash fails at once instead of at the timeout. */
  exited: () => Promise<string | null>;
  /** Whether the answer came from our process (not one that took the port first). */
  ownsPort: () => boolean;
}): Promise<string | null> {
  const deadline = Date.now() + options.timeoutMs;
  const what = options.path ? `health check GET ${options.path}` : `port ${options.port}`;
  const within = `${Math.round(options.timeoutMs / 1000)}s`;
  let lastStatus: number | null = null;
  // Most apps are up within a few hundred milliseconds: poll often at first, then back off.
  let delayMs = 20;
  const crashed = async () => {
    const exit = await options.exited();
    return exit ? `${what}: the process ${exit} before it became healthy` : null;
  };
  while (!options.signal.aborted) {
    const crash = await crashed();
    if (crash) return crash;
    if (options.path) {
      lastStatus = await httpStatus(options.port, options.path);
      if (lastStatus !== null && lastStatus >= 200 && lastStatus < 400 && options.ownsPort()) return null;
    } else if ((await accepts(options.port)) && options.ownsPort()) {
      return null;
    }
    if (Date.now() >= deadline) {
      // A probe can take seconds (one that reached a process that never answers): a crash meanwhile is the better reason.
      const lastCrash = await crashed();
      if (lastCrash) return lastCrash;
      return options.path
        ? `${what} did not answer 2xx within ${within}${lastStatus === null ? "" : ` (last status ${lastStatus})`}`
        : `${what} did not accept connections within ${within}`;
    }
    await sleep(delayMs);
    delayMs = Math.min(delayMs * 1.5, 500);
  }
  return "canceled";
}
