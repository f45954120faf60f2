import { describe, expect, it } from "vitest";
import { filterFromQuery, filterToQuery, isFiltered, matchesLogFilter, type FilterableLine } from "./log-filter";

const line = (fd: FilterableLine["fd"], text: string, extra: Partial<FilterableLine> = {}): FilterableLine => ({
  at: "2026-12-06T10:05:00.000Z",
  fd,
  text,
  source: "r2:120",
  ...extra,
});

describe("the Logs tab's filter", () => {
  it("keeps a stream, a level and the more severe ones, a release and a time range, as the API does", () => {
    const pinoError = line("stdout", '{"level":50,"msg":"boom"}');
    const plain = line("stderr", "Error: boom");
    expect(matchesLogFilter(pinoError, { fd: "stdout" })).toBe(true);
    expect(matchesLogFilter(plain, { fd: "stdout" })).toBe(false);
    expect(matchesLogFilter(pinoError, { level: "warn" })).toBe(true);
    expect(matchesLogFilter(pinoError, { level: "fatal" })).toBe(false);
    // Plain text has no level, whatever stream it was written to.
    expect(matchesLogFilter(plain, { level: "debug" })).toBe(false);
    // A level the API stored wins over reading the text again.
    expect(matchesLogFilter(line("stdout", "no json", { level: "error" }), { level: "error" })).toBe(true);
    expect(matchesLogFilter(pinoError, { releaseId: "r2" })).toBe(true);
    expect(matchesLogFilter(pinoError, { releaseId: "r" })).toBe(false);
    expect(matchesLogFilter(line("stdout", "x", { source: null }), { releaseId: "r2" })).toBe(false);
    expect(matchesLogFilter(pinoError, { since: "2026-12-06T10:05:00.000Z", until: "2026-12-06T10:06:00.000Z" })).toBe(true);
    expect(matchesLogFilter(pinoError, { until: "2026-12-06T10:05:00.000Z" })).toBe(false);
    expect(matchesLogFilter(pinoError, { since: "2026-12-06T10:05:00.001Z" })).toBe(false);
    expect(matchesLogFilter(plain, {})).toBe(true);
  });

  it("round-trips through the URL and ignores what it does not know", () => {
    const filter = { fd: "stderr" as const, level: "error" as const, releaseId: "r1", since: "2026-12-06T10:00:00.000Z" };
    expect(filterFromQuery(filterToQuery(filter))).toEqual({ ...filter, until: undefined });
    expect(filterToQuery(filter).toString()).toBe("stream=stderr&level=error&release=r1&from=2026-12-06T10%3A00%3A00.000Z");
    const junk = filterFromQuery(new URLSearchParams("stream=system&level=loud&release=r%25&from=soon"));
    expect(isFiltered(junk)).toBe(false);
  });
});
