"use client";

import { ActionIcon, Alert, Anchor, Badge, Box, Button, Group, Switch, Text, TextInput, Tooltip } from "@mantine/core";
import { useDebouncedValue } from "@mantine/hooks";
import { IconDownload, IconSearch, IconX } from "@tabler/icons-react";
import { AnsiUp } from "ansi_up";
import Link from "next/link";
import { memo, useCallback, useLayoutEffect, useMemo, useRef, useState, type ReactNode } from "react";
import type { RoomName, StreamedLogLine } from "../../server/realtime/ui-protocol";
import { BLOCK_SIZE, stripAnsi, toPlainText, type BufferedLine } from "./log-buffer";
import classes from "./log-viewer.module.css";
import { useLogStream, type FetchLogPage } from "./use-log-stream";

const LINE_HEIGHT = 20;
/** How close to the bottom (px) still counts as "at the bottom" for follow mode. */
const BOTTOM_SLACK = 8;

// ansi_up escapes HTML in the text itself (escape_html is on by default) and only emits spans
// with colour classes (inline styles for 256-colour codes), plus links for http(s) OSC 8
// hyperlinks; its output is safe to inject.
const ansi = new AnsiUp();
// Classes rather than ansi_up's inline colours (green on white reads at 2.6:1): the module's CSS
// maps them to a palette readable at WCAG AA on the log's background in both colour schemes.
ansi.use_classes = true;
const htmlCache = new WeakMap<BufferedLine, string>();
const plainCache = new WeakMap<BufferedLine, string>();

/** Each line is converted on its own: colours left open by one line (or another service's) do not leak into the next. */
function htmlOf(line: BufferedLine): string {
  let html = htmlCache.get(line);
  if (html === undefined) {
    html = ansi.ansi_to_html(`${line.text}\u001b[0m`);
    htmlCache.set(line, html);
  }
  return html;
}

function plainOf(line: BufferedLine): string {
  let plain = plainCache.get(line);
  if (plain === undefined) {
    plain = stripAnsi(line.text);
    plainCache.set(line, plain);
  }
  return plain;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", fractionalSecondDigits: 3, hour12: false });

function Highlighted({ text, query }: { text: string; query: string }) {
  const parts: ReactNode[] = [];
  const lower = text.toLowerCase();
  let from = 0;
  for (let at = lower.indexOf(query); at >= 0 && query.length > 0; at = lower.indexOf(query, from)) {
    if (at > from) parts.push(text.slice(from, at));
    parts.push(
      <mark key={at} className={classes.mark}>
        {text.slice(at, at + query.length)}
      </mark>,
    );
    from = at + query.length;
  }
  parts.push(text.slice(from));
  return <>{parts}</>;
}

/**
 * Live lines stopped for good because the tab's session ended: says why, and signs in again back
 * to this page (the sign-in form's `next`), instead of a "Reconnecting" that never will.
 */
function SessionEnded({ reason }: { reason: string }) {
  // Shown only in the browser, once the session ended: the page's own address is there to read.
  const back = `${window.location.pathname}${window.location.search}`;
  return (
    <Alert color="yellow" mb="xs" title="Session ended" withCloseButton={false}>
      <Text size="sm">
        Live lines stopped: {reason}. The lines below were read before it ended.{" "}
        <Anchor component={Link} href={`/signin?next=${encodeURIComponent(back)}`}>
          Sign in again
        </Anchor>{" "}
        to follow this log.
      </Text>
    </Alert>
  );
}

/** Beyond this many lines, blocks out of view skip rendering; below it there is nothing worth skipping. */
const LAZY_FROM = 1000;

const LogBlock = memo(function LogBlock({
  lines,
  timestamps,
  query,
  lazy,
}: {
  lines: readonly BufferedLine[];
  timestamps: boolean;
  query: string;
  lazy: boolean;
}) {
  return (
    <div
      className={lazy ? `${classes.block} ${classes.lazy}` : classes.block}
      style={lazy ? { containIntrinsicSize: `auto ${lines.length * LINE_HEIGHT}px` } : undefined}
    >
      {lines.map((line) => (
        <div key={line.seq} className={classes.line} data-seq={line.seq} data-fd={line.fd}>
          {timestamps && (
            <time className={classes.timestamp} dateTime={line.at}>
              {timeFormat.format(new Date(line.at))}
            </time>
          )}
          {query ? <Highlighted text={plainOf(line)} query={query} /> : <span dangerouslySetInnerHTML={{ __html: htmlOf(line) }} />}
        </div>
      ))}
    </div>
  );
});

export type LogViewerProps = {
  /** `deployment:<id>` (build and deploy output) or `service:<id>` (runtime output). */
  room: RoomName;
  fetchPage: FetchLogPage;
  /** Start with the last N lines rather than the whole stream. */
  initialTail?: number;
  /** Names the log region for assistive technology and tests ("Build logs"). */
  label: string;
  /** Name of the downloaded file, without extension. */
  fileName: string;
  /** A fixed height (a full-page log); otherwise the view grows with its lines up to `maxHeight`. */
  height?: number | string;
  maxHeight?: number | string;
  emptyText?: string;
  /** Which live lines to keep when `fetchPage` reads filtered pages. */
  accept?: (line: StreamedLogLine) => boolean;
  /** Filter controls shown next to the search box. */
  filters?: ReactNode;
};

/**
 * A log stream: ANSI colours, follow mode, client-side search, timestamps, download. Renders in
 * immutable blocks of lines (only the newest block re-renders as lines arrive; blocks out of view
 * skip layout) and keeps at most 20k lines. Callers key it by stream: a new stream starts fresh.
 */
export function LogViewer({
  room,
  fetchPage,
  initialTail,
  label,
  fileName,
  height,
  maxHeight = 480,
  emptyText = "No log lines yet.",
  accept,
  filters,
}: LogViewerProps) {
  const { buffer, connected, ended, loading, error, retry } = useLogStream({ room, fetchPage, initialTail, accept });
  const [follow, setFollow] = useState(true);
  const [timestamps, setTimestamps] = useState(false);
  const [search, setSearch] = useState("");
  const [debounced] = useDebouncedValue(search.trim().toLowerCase(), 150);
  const scroller = useRef<HTMLDivElement>(null);

  const blocks = useMemo(() => {
    if (!debounced) return buffer.blocks;
    const matching: BufferedLine[] = [];
    for (const block of buffer.blocks) for (const line of block) if (plainOf(line).toLowerCase().includes(debounced)) matching.push(line);
    const chunks: BufferedLine[][] = [];
    for (let i = 0; i < matching.length; i += BLOCK_SIZE) chunks.push(matching.slice(i, i + BLOCK_SIZE));
    return chunks;
  }, [buffer, debounced]);
  const shown = useMemo(() => blocks.reduce((count, block) => count + block.length, 0), [blocks]);

  // Before paint, so following never shows a frame scrolled short of the newest line.
  useLayoutEffect(() => {
    const element = scroller.current;
    if (follow && element) element.scrollTop = element.scrollHeight;
  }, [blocks, follow, timestamps]);

  const onScroll = useCallback(() => {
    const element = scroller.current;
    if (!element) return;
    const atBottom = element.scrollHeight - element.scrollTop - element.clientHeight <= BOTTOM_SLACK;
    // Scrolling up pauses following; scrolling back to the bottom resumes it.
    setFollow(atBottom);
  }, []);

  const download = () => {
    const blob = new Blob([toPlainText(buffer, timestamps)], { type: "text/plain;charset=utf-8" });
    const url = URL.createObjectURL(blob);
    const link = document.createElement("a");
    link.href = url;
    link.download = `${fileName}.log`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 0);
  };

  const status = ended
    ? { label: "Signed out", color: "red", title: "The session ended: no new lines arrive until you sign in again" }
    : connected
      ? { label: "Live", color: "green", title: "New lines appear as they are written" }
      : {
          label: loading ? "Connecting" : "Reconnecting",
          color: loading ? "gray" : "orange",
          title: "Lines written meanwhile are fetched when the connection is back",
        };

  return (
    <Box>
      <Group justify="space-between" mb="xs" gap="sm" wrap="wrap">
        <Group gap="sm" wrap="wrap">
          <TextInput
            aria-label="Search logs"
            placeholder="Search"
            size="xs"
            w={240}
            value={search}
            onChange={(event) => setSearch(event.currentTarget.value)}
            leftSection={<IconSearch size={14} aria-hidden />}
            rightSection={
              search ? (
                <ActionIcon variant="subtle" color="gray" size="sm" aria-label="Clear search" onClick={() => setSearch("")}>
                  <IconX size={14} />
                </ActionIcon>
              ) : null
            }
          />
          {filters}
          {debounced && (
            <Text size="xs" c="dimmed" aria-live="polite">
              {shown.toLocaleString()} of {buffer.size.toLocaleString()} lines match
            </Text>
          )}
        </Group>
        <Group gap="md" wrap="wrap">
          <Switch
            size="xs"
            label="Follow"
            checked={follow}
            onChange={(event) => {
              const on = event.currentTarget.checked;
              setFollow(on);
              if (!on) return;
              const element = scroller.current;
              if (element) element.scrollTop = element.scrollHeight;
            }}
          />
          <Switch size="xs" label="Timestamps" checked={timestamps} onChange={(event) => setTimestamps(event.currentTarget.checked)} />
          <Tooltip label="Download the loaded lines as plain text">
            <Button size="xs" variant="default" leftSection={<IconDownload size={14} aria-hidden />} onClick={download} disabled={buffer.size === 0}>
              Download
            </Button>
          </Tooltip>
          <Badge variant="dot" color={status.color} size="sm" role="status" data-connected={connected} title={status.title}>
            {status.label}
          </Badge>
        </Group>
      </Group>
      {ended && <SessionEnded reason={ended} />}
      {error && !ended && (
        <Alert color="red" mb="xs" title="Could not load the logs" withCloseButton={false}>
          <Group justify="space-between">
            <Text size="sm">{error}</Text>
            <Button size="xs" variant="light" color="red" onClick={retry}>
              Retry
            </Button>
          </Group>
        </Alert>
      )}
      {buffer.dropped > 0 && (
        <Text size="xs" c="dimmed" mb={4}>
          Showing the newest {buffer.size.toLocaleString()} lines; {buffer.dropped.toLocaleString()} older lines are not kept in this view.
        </Text>
      )}
      <div
        ref={scroller}
        className={classes.scroller}
        style={height === undefined ? { maxHeight, minHeight: 96 } : { height }}
        role="log"
        aria-label={label}
        aria-live="off"
        aria-busy={loading}
        tabIndex={0}
        onScroll={onScroll}
        data-line-count={buffer.size}
      >
        {buffer.size === 0 ? (
          <div className={classes.empty}>{loading ? "Loading…" : emptyText}</div>
        ) : shown === 0 ? (
          <div className={classes.empty}>No line matches “{search.trim()}”.</div>
        ) : (
          blocks.map((block) => <LogBlock key={block[0]!.seq} lines={block} timestamps={timestamps} query={debounced} lazy={shown > LAZY_FROM} />)
        )}
      </div>
    </Box>
  );
}
