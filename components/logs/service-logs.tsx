"use client";

import { Group, NativeSelect, Text, TextInput } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { useCallback, useMemo } from "react";
import { logLevels } from "../../engine/protocol/log-level";
import { PageState } from "../not-found";
import { useQueryState } from "../use-query-state";
import { useTRPC, useTRPCClient } from "../trpc";
import { filterFromQuery, filterToQuery, isFiltered, matchesLogFilter, type LogFilter } from "./log-filter";
import { LogViewer } from "./log-viewer";
import type { FetchLogPage } from "./use-log-stream";

/** The first screen of a service's runtime log: its newest lines, then everything as it is written. */
const INITIAL_TAIL = 1000;

const streamOptions = [
  { value: "", label: "All streams" },
  { value: "stdout", label: "stdout" },
  { value: "stderr", label: "stderr" },
];
const fds = ["stdout", "stderr"] as const;
const levelOptions = [
  { value: "", label: "Any level" },
  { value: "warn", label: "Warnings and worse" },
  { value: "error", label: "Errors and worse" },
];

/** `datetime-local` speaks the browser's local time without a zone; the filter holds ISO times. */
function toLocalInput(iso: string | undefined): string {
  if (!iso) return "";
  const date = new Date(iso);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}
const fromLocalInput = (value: string) => (value ? new Date(value).toISOString() : undefined);

/** The Logs tab's filter lives in its URL (`?stream=stderr&level=error`), so a filtered view can be shared. */
const logFilterQuery = (filter: LogFilter) => filterToQuery(filter).toString();
const useLogFilter = () => useQueryState(filterFromQuery, logFilterQuery);

/** The Logs tab of a service: its runtime output (what its processes print), live. */
export function ServiceLogs({ serviceId }: { serviceId: string }) {
  const trpc = useTRPC();
  const client = useTRPCClient();
  const query = useQuery(trpc.services.get.queryOptions({ serviceId }));
  const logged = useQuery(trpc.deployments.logReleases.queryOptions({ serviceId }, { staleTime: 30_000 }));
  const [filter, setFilter] = useLogFilter();
  const fetchPage: FetchLogPage = useCallback(
    (request) => {
      const page = "tail" in request ? { tail: request.tail } : { after: request.after, limit: request.limit };
      return client.deployments.logs.query({ serviceId, ...page, ...filter });
    },
    [client, serviceId, filter],
  );
  const accept = useMemo(() => (isFiltered(filter) ? (line: Parameters<typeof matchesLogFilter>[0]) => matchesLogFilter(line, filter) : undefined), [filter]);
  const service = query.data;
  if (!service) return <PageState loading={query.isPending} error={query.error} missing={!query.isPending && !query.error} what="service" />;

  // The release running now, the service's recent ones that logged (latest first), and the one the URL names.
  const lastLine = new Map((logged.data ?? []).map((release) => [release.releaseId, release.lastAt]));
  const releases = [
    ...new Set(
      [service.runtime?.releaseId, ...(logged.data ?? []).map((release) => release.releaseId), filter.releaseId].filter((id): id is string => Boolean(id)),
    ),
  ];
  const releaseLabel = (id: string) => {
    if (id === service.runtime?.releaseId) return `${id} (current)`;
    const at = lastLine.get(id);
    return at ? `${id} (to ${new Date(at).toLocaleString([], { dateStyle: "short", timeStyle: "short" })})` : id;
  };
  const releaseOptions = [{ value: "", label: "All releases" }, ...releases.map((id) => ({ value: id, label: releaseLabel(id) }))];
  const controls = (
    <Group gap="xs" wrap="wrap">
      <NativeSelect
        aria-label="Stream"
        size="xs"
        w={130}
        data={streamOptions}
        value={filter.fd ?? ""}
        onChange={(event) => setFilter({ fd: fds.find((fd) => fd === event.currentTarget.value) })}
      />
      <NativeSelect
        aria-label="Level"
        size="xs"
        w={170}
        data={levelOptions}
        value={filter.level ?? ""}
        onChange={(event) => setFilter({ level: logLevels.find((level) => level === event.currentTarget.value) })}
      />
      <NativeSelect
        aria-label="Release"
        size="xs"
        w={260}
        data={releaseOptions}
        value={filter.releaseId ?? ""}
        onChange={(event) => setFilter({ releaseId: event.currentTarget.value || undefined })}
      />
      <TextInput
        aria-label="From"
        type="datetime-local"
        size="xs"
        w={220}
        leftSection={
          <Text size="xs" c="dimmed" aria-hidden>
            From
          </Text>
        }
        leftSectionWidth={44}
        value={toLocalInput(filter.since)}
        onChange={(event) => setFilter({ since: fromLocalInput(event.currentTarget.value) })}
      />
      <TextInput
        aria-label="To"
        type="datetime-local"
        size="xs"
        w={220}
        leftSection={
          <Text size="xs" c="dimmed" aria-hidden>
            To
          </Text>
        }
        leftSectionWidth={44}
        value={toLocalInput(filter.until)}
        onChange={(event) => setFilter({ until: fromLocalInput(event.currentTarget.value) })}
      />
    </Group>
  );

  return (
    <>
      <Text size="sm" c="dimmed" mb="sm">
        Runtime output of the service&apos;s processes. Build and deploy output is on each deployment&apos;s page. A level is read from JSON log lines (pino,
        winston, zap, structlog…); plain text has none.
      </Text>
      <LogViewer
        // A new filter is a new view: it reads the filtered history afresh.
        key={`${serviceId}?${filterToQuery(filter).toString()}`}
        room={`service:${serviceId}`}
        fetchPage={fetchPage}
        accept={accept}
        filters={controls}
        initialTail={INITIAL_TAIL}
        label="Runtime logs"
        fileName={`${service.name}-runtime`}
        height="calc(100vh - 340px)"
        emptyText={isFiltered(filter) ? "No line matches these filters yet." : "No output yet. Lines appear here as the service writes them."}
      />
    </>
  );
}
