"use client";

import { Button, Group, NativeSelect, TextInput } from "@mantine/core";
import { useDebouncedCallback } from "@mantine/hooks";
import { IconSearch, IconX } from "@tabler/icons-react";
import { useEffect, useState } from "react";
import { ENVIRONMENT_MODES, type EnvironmentMode } from "../api-types";
import { useQueryState } from "../use-query-state";
import { filtersFromQuery, isFiltered, queryFromFilters, STATUS_GROUPS, type OverviewFilters, type StatusGroup } from "./overview-filters";

/** The overview's filters, read from and written to the URL's query. */
export const useOverviewFilters = () => useQueryState(filtersFromQuery, queryFromFilters);

const ALL = "";

/** Search by name, and filter by project, environment mode and status. */
export function OverviewToolbar({
  filters,
  onChange,
  projectNames,
}: {
  filters: OverviewFilters;
  onChange: (change: Partial<OverviewFilters>) => void;
  projectNames: string[];
}) {
  // The box answers each keystroke; the URL follows once typing pauses.
  const [search, setSearch] = useState(filters.q);
  const commitSearch = useDebouncedCallback((q: string) => onChange({ q: q.trim() }), 250);
  // Back and forward, or a cleared filter, change the URL: the box follows it (keeping a space being typed).
  useEffect(() => setSearch((current) => (current.trim() === filters.q ? current : filters.q)), [filters.q]);

  return (
    <Group gap="sm" mb="lg" align="flex-end" wrap="wrap" role="search" aria-label="Filter the overview">
      <TextInput
        label="Search"
        placeholder="Project, environment or service name"
        leftSection={<IconSearch size={16} aria-hidden />}
        value={search}
        onChange={(event) => {
          setSearch(event.currentTarget.value);
          commitSearch(event.currentTarget.value);
        }}
        w={{ base: "100%", sm: 300 }}
      />
      <NativeSelect
        label="Project"
        value={filters.project ?? ALL}
        onChange={(event) => onChange({ project: event.currentTarget.value || null })}
        data={[{ value: ALL, label: "All projects" }, ...projectNames.map((name) => ({ value: name, label: name }))]}
      />
      <NativeSelect
        label="Mode"
        value={filters.mode ?? ALL}
        onChange={(event) => onChange({ mode: (event.currentTarget.value || null) as EnvironmentMode | null })}
        data={[{ value: ALL, label: "All modes" }, ...ENVIRONMENT_MODES.map((mode) => ({ value: mode, label: mode.charAt(0) + mode.slice(1).toLowerCase() }))]}
      />
      <NativeSelect
        label="Status"
        value={filters.status ?? ALL}
        onChange={(event) => onChange({ status: (event.currentTarget.value || null) as StatusGroup | null })}
        data={[{ value: ALL, label: "Any status" }, ...Object.entries(STATUS_GROUPS).map(([value, group]) => ({ value, label: group.label }))]}
      />
      {isFiltered(filters) && (
        <Button
          variant="subtle"
          leftSection={<IconX size={16} aria-hidden />}
          onClick={() => {
            commitSearch.cancel();
            setSearch("");
            onChange({ q: "", project: null, mode: null, status: null });
          }}
        >
          Clear filters
        </Button>
      )}
    </Group>
  );
}
