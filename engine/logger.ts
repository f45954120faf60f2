import pino, { type DestinationStream, type Logger } from "pino";
import { LOG_REDACTION } from "./protocol/log-redaction";

/**
 * The logger of the engine and of its router process: JSON lines, or pino-pretty in a terminal,
 * redacting what the control plane's logger redacts (issue 13).
 */
export function createEngineLogger(options: { name: string; level?: string; pretty?: boolean }, destination?: DestinationStream): Logger {
  const base = { name: options.name, level: options.level ?? "info", redact: LOG_REDACTION };
  if (options.pretty) return pino(base, pino.transport({ target: "pino-pretty", options: { ignore: "pid,hostname,name", translateTime: "HH:MM:ss" } }));
  return destination ? pino(base, destination) : pino(base);
}
