import pino, { type Logger } from "pino";
import { LOG_REDACTION } from "../engine/protocol/log-redaction";

export type { Logger };

/**
 * The one structured logger of the control plane. Callers bind request, job, engine and
 * deployment ids with `logger.child({...})`. Tokens, secrets and terminal contents are never
 * passed to it; `redact` is a second line of defence for fields that must never appear.
 */
export function createLogger(options: { name: string; level?: string; pretty?: boolean }): Logger {
  const base = {
    name: options.name,
    level: options.level ?? "info",
    // The same paths as the engine's logger (engine/logger.ts): one list for both sides.
    redact: LOG_REDACTION,
  };
  if (options.pretty) {
    return pino(base, pino.transport({ target: "pino-pretty", options: { colorize: true, ignore: "pid,hostname,name", translateTime: "HH:MM:ss" } }));
  }
  return pino(base);
}
