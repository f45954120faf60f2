/**
 * Severity of a structured (JSON) log line, read the way the common loggers write it: pino and
 * bunyan's numbers (10 trace … 60 fatal), and the names of winston, zap, structlog,
 * python-json-logger, logrus and Google Cloud's `severity`. Trace and verbose fold into debug,
 * critical and panic into fatal, so one short scale filters every app alike.
 */
export const logLevels = ["debug", "info", "warn", "error", "fatal"] as const;
export type LogLevel = (typeof logLevels)[number];

/** The fields loggers put the level under, in the order they are tried. */
const levelFields = ["level", "severity", "lvl", "levelname", "log.level"];

const levelNames: Record<string, LogLevel> = {
  trace: "debug",
  verbose: "debug",
  silly: "debug",
  debug: "debug",
  info: "info",
  information: "info",
  notice: "info",
  warn: "warn",
  warning: "warn",
  error: "error",
  err: "error",
  fatal: "fatal",
  critical: "fatal",
  crit: "fatal",
  alert: "fatal",
  emergency: "fatal",
  emerg: "fatal",
  panic: "fatal",
  dpanic: "fatal",
};

/** pino and bunyan: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal. */
function numericLevel(value: number): LogLevel {
  if (value >= 60) return "fatal";
  if (value >= 50) return "error";
  if (value >= 40) return "warn";
  if (value >= 30) return "info";
  return "debug";
}

/** The level of a JSON log line, or null for plain text and JSON without a recognised level. */
export function logLevelOf(text: string): LogLevel | null {
  const trimmed = text.trim();
  // Most lines are plain text: skip the parse unless the line looks like one JSON object.
  if (!trimmed.startsWith("{") || !trimmed.endsWith("}")) return null;
  let record: unknown;
  try {
    record = JSON.parse(trimmed);
  } catch {
    return null;
  }
  if (typeof record !== "object" || record === null || Array.isArray(record)) return null;
  for (const field of levelFields) {
    const value = (record as Record<string, unknown>)[field];
    if (typeof value === "number" && Number.isFinite(value)) return numericLevel(value);
    if (typeof value === "string") {
      const level = levelNames[value.trim().toLowerCase()];
      if (level) return level;
    }
  }
  return null;
}

/** The levels a "this level or more severe" filter keeps: `error` keeps error and fatal. */
export function levelsAtLeast(level: LogLevel): LogLevel[] {
  return logLevels.slice(logLevels.indexOf(level));
}
