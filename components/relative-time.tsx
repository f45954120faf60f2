"use client";

import { Tooltip } from "@mantine/core";
import { useEffect, useState } from "react";

const units: [Intl.RelativeTimeFormatUnit, number][] = [
  ["year", 365 * 24 * 3600],
  ["month", 30 * 24 * 3600],
  ["week", 7 * 24 * 3600],
  ["day", 24 * 3600],
  ["hour", 3600],
  ["minute", 60],
  ["second", 1],
];
const rtf = new Intl.RelativeTimeFormat("en", { numeric: "auto" });

/** "3 minutes ago", "in 2 days", "just now": the one way the dashboard says when. */
export function formatRelative(value: string | Date, now: number = Date.now()): string {
  const seconds = Math.round((new Date(value).getTime() - now) / 1000);
  if (Math.abs(seconds) < 10) return "just now";
  for (const [unit, size] of units) {
    if (Math.abs(seconds) >= size || unit === "second") return rtf.format(Math.trunc(seconds / size), unit);
  }
  return "just now";
}

export function formatAbsolute(value: string | Date): string {
  return new Date(value).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

/** The current time, refreshed every `intervalMs`, so relative times keep moving. */
export function useNow(intervalMs = 30_000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs]);
  return now;
}

/** A `<time>` with a relative label and the absolute time on hover. */
export function RelativeTime({ value, fallback = "never" }: { value: string | Date | null | undefined; fallback?: string }) {
  const now = useNow();
  if (!value) return <>{fallback}</>;
  return (
    <Tooltip label={formatAbsolute(value)} withArrow>
      <time dateTime={new Date(value).toISOString()}>{formatRelative(value, now)}</time>
    </Tooltip>
  );
}
