import { levelsAtLeast, logLevelOf, logLevels, type LogLevel } from "../../engine/protocol/log-level";
import type { LogFd } from "./log-buffer";

/**
 * What the Logs tab narrows a service's runtime output to. The API applies it to stored lines
 * (server/logs/read-logs.ts); `matchesLogFilter` applies the same rules to lines arriving live,
 * so a filtered view stays filtered while it follows.
 */
export type LogFilter = {
  fd?: Exclude<LogFd, "system">;
  /** This level or a more severe one, read from JSON lines; plain text has none. */
  level?: LogLevel;
  releaseId?: string;
  /** ISO times: from `since` (inclusive) to `until` (exclusive). */
  since?: string;
  until?: string;
};

export type FilterableLine = { at: string; fd: LogFd; text: string; level?: LogLevel | null; source?: string | null };

export function matchesLogFilter(line: FilterableLine, filter: LogFilter): boolean {
  if (filter.fd && line.fd !== filter.fd) return false;
  if (filter.level) {
    const level = line.level === undefined ? logLevelOf(line.text) : line.level;
    if (!level || !levelsAtLeast(filter.level).includes(level)) return false;
  }
  // A runtime line's source is `<release id>:<byte offset>`, as the API matches it.
  if (filter.releaseId && !line.source?.startsWith(`${filter.releaseId}:`)) return false;
  const at = Date.parse(line.at);
  if (filter.since && at < Date.parse(filter.since)) return false;
  if (filter.until && at >= Date.parse(filter.until)) return false;
  return true;
}

export const isFiltered = (filter: LogFilter) => Object.values(filter).some((value) => value !== undefined);

const fds = ["stdout", "stderr"] as const;
const releasePattern = /^[A-Za-z0-9_-]{1,100}$/;
const validTime = (text: string | null) => (text && !Number.isNaN(Date.parse(text)) ? new Date(text).toISOString() : undefined);

/** The filter a Logs URL states (`?stream=stderr&level=error&release=r1&from=…&to=…`); unknown values are ignored. */
export function filterFromQuery(query: URLSearchParams): LogFilter {
  const stream = query.get("stream");
  const level = query.get("level");
  const release = query.get("release");
  return {
    fd: fds.find((fd) => fd === stream),
    level: logLevels.find((known) => known === level),
    releaseId: release && releasePattern.test(release) ? release : undefined,
    since: validTime(query.get("from")),
    until: validTime(query.get("to")),
  };
}

export function filterToQuery(filter: LogFilter): URLSearchParams {
  const query = new URLSearchParams();
  if (filter.fd) query.set("stream", filter.fd);
  if (filter.level) query.set("level", filter.level);
  if (filter.releaseId) query.set("release", filter.releaseId);
  if (filter.since) query.set("from", filter.since);
  if (filter.until) query.set("to", filter.until);
  return query;
}
