"use client";

import { Box, Text } from "@mantine/core";

type Line = { sign: "+" | "-" | " "; text: string };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function show(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** `{ git: { url } }` to `git.url: …` lines, so nested configuration diffs key by key. */
function flatten(value: unknown, prefix = ""): Map<string, string> {
  const out = new Map<string, string>();
  if (isObject(value)) {
    const entries = Object.entries(value);
    if (entries.length === 0 && prefix) out.set(prefix, "{}");
    for (const [key, inner] of entries) for (const [path, text] of flatten(inner, prefix ? `${prefix}.${key}` : key)) out.set(path, text);
  } else if (prefix) {
    out.set(prefix, show(value));
  } else {
    out.set("value", show(value));
  }
  return out;
}

/** Lines of a `{ before, after }` change: removed, added and unchanged keys, in a stable order. */
export function diffLines(before: unknown, after: unknown): Line[] {
  const old = flatten(before);
  const next = flatten(after);
  const keys = [...new Set([...old.keys(), ...next.keys()])];
  const lines: Line[] = [];
  for (const key of keys) {
    const a = old.get(key);
    const b = next.get(key);
    if (a === b) lines.push({ sign: " ", text: `${key}: ${a}` });
    else {
      if (a !== undefined) lines.push({ sign: "-", text: `${key}: ${a}` });
      if (b !== undefined) lines.push({ sign: "+", text: `${key}: ${b}` });
    }
  }
  return lines;
}

export function changeLines(changes: Record<string, unknown>): Line[] {
  if ("before" in changes && "after" in changes) {
    const rest = Object.fromEntries(Object.entries(changes).filter(([key]) => key !== "before" && key !== "after"));
    return [...diffLines(changes.before, changes.after), ...[...flatten(rest)].map(([key, text]) => ({ sign: " " as const, text: `${key}: ${text}` }))];
  }
  return [...flatten(changes)].map(([key, text]) => ({ sign: " ", text: `${key}: ${text}` }));
}

const COLORS = { "+": "var(--mantine-color-green-light)", "-": "var(--mantine-color-red-light)", " ": "transparent" };
const TEXT = { "+": "var(--mantine-color-green-light-color)", "-": "var(--mantine-color-red-light-color)", " ": "inherit" };

/** A readable diff of an audit event's `changes` (secrets already arrive as "[secret]"). */
export function ChangeDiff({ changes }: { changes: Record<string, unknown> | null }) {
  if (!changes || Object.keys(changes).length === 0)
    return (
      <Text fz="sm" c="dimmed">
        No recorded changes.
      </Text>
    );
  const lines = changeLines(changes);
  return (
    <Box
      component="pre"
      m={0}
      p="xs"
      fz="xs"
      ff="monospace"
      style={{ whiteSpace: "pre-wrap", overflowWrap: "anywhere", borderRadius: "var(--mantine-radius-sm)", background: "var(--mantine-color-default-hover)" }}
      aria-label="Changes"
    >
      {lines.map((line, index) => (
        <div key={index} style={{ background: COLORS[line.sign], color: TEXT[line.sign], padding: "0 4px" }}>
          <span aria-label={line.sign === "+" ? "added" : line.sign === "-" ? "removed" : undefined}>{line.sign}</span> {line.text}
        </div>
      ))}
    </Box>
  );
}
