/**
 * Human output: aligned tables, short durations and ages. Machine output is `--json` and never
 * goes through here.
 */

export type Column<T> = { header: string; value: (row: T) => string | number | null | undefined };

/** Columns padded to their widest cell, two spaces apart, no trailing blanks. */
export function table<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const cells = [columns.map((c) => c.header), ...rows.map((row) => columns.map((c) => cellText(c.value(row))))];
  const widths = columns.map((_, index) => Math.max(...cells.map((line) => line[index]!.length)));
  return cells
    .map((line) =>
      line
        .map((cell, index) => (index === line.length - 1 ? cell : cell.padEnd(widths[index]!)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** `key  value` lines, keys aligned. */
export function keyValues(entries: readonly [string, string | number | null | undefined][]): string {
  const width = Math.max(...entries.map(([key]) => key.length));
  return entries.map(([key, value]) => `${key.padEnd(width)}  ${cellText(value)}`.trimEnd()).join("\n");
}

function cellText(value: string | number | null | undefined): string {
  if (value === null || value === undefined || value === "") return "-";
  // A cell is one line: a multi-line message would break the alignment of every row after it.
  return String(value).replace(/\s*\n\s*/g, " ");
}

/** 340ms, 1.2s, 2m 03s, 1h 02m. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const totalSeconds = Math.round(ms / 1000);
  if (totalSeconds < 3600) return `${Math.floor(totalSeconds / 60)}m ${String(totalSeconds % 60).padStart(2, "0")}s`;
  const totalMinutes = Math.floor(totalSeconds / 60);
  return `${Math.floor(totalMinutes / 60)}h ${String(totalMinutes % 60).padStart(2, "0")}m`;
}

const units: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `10m`, `2h`, `7d` (s, m, h, d) in seconds, or null when the text is not a duration: the input side of the above. */
export function durationSeconds(text: string): number | null {
  const relative = /^(\d+)([smhd])$/.exec(text);
  return relative ? (Number(relative[1]) * units[relative[2]!]!) / 1000 : null;
}

/** "12s ago", "5m ago", "3h ago", "2d ago"; beyond a month the date itself. */
export function formatAge(iso: string | null | undefined, now: Date = new Date()): string {
  if (!iso) return "-";
  const then = new Date(iso);
  const seconds = Math.max(0, Math.round((now.getTime() - then.getTime()) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h ago`;
  if (seconds < 30 * 86_400) return `${Math.floor(seconds / 86_400)}d ago`;
  return then.toISOString().slice(0, 10);
}

/** Time between two ISO timestamps, or null while the second is missing. */
export function elapsed(from: string | null, to: string | null): string | null {
  if (!from || !to) return null;
  return formatDuration(new Date(to).getTime() - new Date(from).getTime());
}

export const shortCommit = (commit: string | null | undefined) => (commit ? commit.slice(0, 7) : null);

/** Secrets are write-only: the API returns no value, the table shows that one exists. */
export const MASKED = "********";

/** The first line of a possibly long message (a build error can be a whole stack). */
export function firstLine(text: string | null | undefined): string {
  return (text ?? "").trim().split("\n")[0] ?? "";
}
