"use client";

import { ActionIcon, Alert, Anchor, Badge, Button, Card, Code, Group, SimpleGrid, Table, Text, TextInput } from "@mantine/core";
import { IconChevronDown, IconChevronRight, IconFilter, IconX } from "@tabler/icons-react";
import { useInfiniteQuery } from "@tanstack/react-query";
import Link from "next/link";
import { Fragment, useState } from "react";
import type { Inputs, Outputs } from "../api-types";
import { useCan } from "../auth/can";
import { PageHeader } from "../page-header";
import { RelativeTime } from "../relative-time";
import { useTRPCClient } from "../trpc";
import { ChangeDiff } from "./change-diff";
import { ApiErrorAlert } from "../api-error-alert";

type Filters = { actor: string; action: string; targetId: string; from: string; to: string };
type AuditEvent = Outputs["organization"]["audit"][number];
type AuditLink = NonNullable<AuditEvent["target"]>;
const PAGE = 50;
const EMPTY: Filters = { actor: "", action: "", targetId: "", from: "", to: "" };

/** `datetime-local` values are local times without a zone; the API wants ISO instants. */
const toIso = (local: string) => (local ? new Date(local).toISOString() : undefined);

function query(filters: Filters, before?: number): Inputs["organization"]["audit"] {
  return {
    actor: filters.actor.trim() || undefined,
    action: filters.action.trim() || undefined,
    targetId: filters.targetId.trim() || undefined,
    from: toIso(filters.from),
    to: toIso(filters.to),
    before,
    limit: PAGE,
  };
}

const ORIGIN_COLORS: Record<string, string> = { UI: "indigo", CLI: "teal", API: "cyan", WEBHOOK: "grape", SCHEDULER: "orange", SYSTEM: "gray" };

/**
 * A target by its name, linked to its page while it exists (the server resolves both); a target
 * deleted since shows the name it had, unlinked, with its id on hover.
 */
function TargetName({ link, id }: { link: AuditLink; id?: string | null }) {
  if (link.href)
    return (
      <Anchor component={Link} href={link.href} fz="sm" className="break-anywhere">
        {link.label}
      </Anchor>
    );
  return (
    <Text span fz="sm" className="break-anywhere" title={id && id !== link.label ? `${id} (deleted)` : "deleted"}>
      {link.label}
    </Text>
  );
}

/** The services a deployment action acted on, by name: its `serviceIds` below are ids only. */
function ServiceNames({ services }: { services: AuditLink[] }) {
  return (
    <Text fz="sm" mb="xs" aria-label="Services acted on">
      {services.length === 1 ? "Service" : "Services"}:{" "}
      {services.map((service, index) => (
        <Fragment key={index}>
          {index > 0 && ", "}
          <TargetName link={service} />
        </Fragment>
      ))}
    </Text>
  );
}

function EventRow({ event }: { event: AuditEvent }) {
  const [open, setOpen] = useState(false);
  const hasChanges = (!!event.changes && Object.keys(event.changes).length > 0) || !!event.services;
  return (
    <Fragment>
      <Table.Tr>
        <Table.Td w={36}>
          <ActionIcon
            variant="subtle"
            color="gray"
            onClick={() => setOpen(!open)}
            aria-expanded={open}
            aria-label={`${open ? "Hide" : "Show"} changes of ${event.action} #${event.id}`}
            disabled={!hasChanges}
          >
            {open ? <IconChevronDown size={16} /> : <IconChevronRight size={16} />}
          </ActionIcon>
        </Table.Td>
        <Table.Td data-label="When">
          <Text fz="sm" style={{ whiteSpace: "nowrap" }}>
            <RelativeTime value={event.at} />
          </Text>
        </Table.Td>
        <Table.Td data-label="Actor">
          <Text fz="sm" className="break-anywhere">
            {event.actor}
          </Text>
          <Text fz="xs" c="dimmed">
            {event.actorType}
            {event.ip ? ` · ${event.ip}` : ""}
          </Text>
        </Table.Td>
        <Table.Td data-label="Action">
          <Code>{event.action}</Code>
        </Table.Td>
        <Table.Td data-label="Target">
          <Text fz="xs" c="dimmed">
            {event.targetType.replace(/_/g, " ")}
          </Text>
          {event.target && <TargetName link={event.target} id={event.targetId} />}
          {event.deployment && (
            <Text fz="xs" c="dimmed">
              by <TargetName link={event.deployment} />
            </Text>
          )}
        </Table.Td>
        <Table.Td data-label="Origin">
          <Badge size="sm" variant="light" color={ORIGIN_COLORS[event.origin] ?? "gray"}>
            {event.origin}
          </Badge>
        </Table.Td>
      </Table.Tr>
      {open && (
        <Table.Tr>
          <Table.Td />
          <Table.Td colSpan={5}>
            {event.services && <ServiceNames services={event.services} />}
            <ChangeDiff changes={event.changes} />
          </Table.Td>
        </Table.Tr>
      )}
    </Fragment>
  );
}

/** Every change in the organization, who made it, from where; newest first. */
export function AuditPage() {
  const client = useTRPCClient();
  const isAdmin = useCan("ADMIN");
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const events = useInfiniteQuery({
    queryKey: ["audit", filters],
    queryFn: ({ pageParam }) => client.organization.audit.query(query(filters, pageParam)),
    initialPageParam: undefined as number | undefined,
    getNextPageParam: (last) => (last.length === PAGE ? last[last.length - 1]?.id : undefined),
    enabled: isAdmin,
  });
  const field = (key: keyof Filters) => ({
    value: draft[key],
    onChange: (event: React.ChangeEvent<HTMLInputElement>) => {
      const value = event.currentTarget.value;
      setDraft((current) => ({ ...current, [key]: value }));
    },
  });
  const rows = events.data?.pages.flat() ?? [];
  const filtered = JSON.stringify(filters) !== JSON.stringify(EMPTY);

  return (
    <>
      <PageHeader
        title="Audit log"
        description="Every mutation, deployment and shell session: who, what, when, from where, and the change (secrets redacted)."
      />
      {!isAdmin ? (
        <Alert color="gray" title="Admins only">
          Only admins and owners can read the audit log.
        </Alert>
      ) : (
        <>
          <Card withBorder padding="md" mb="lg">
            <form
              onSubmit={(event) => {
                event.preventDefault();
                setFilters(draft);
              }}
              aria-label="Audit filters"
            >
              <SimpleGrid cols={{ base: 1, sm: 2, lg: 5 }}>
                <TextInput label="Actor" placeholder="admin@example.com" {...field("actor")} />
                <TextInput label="Action" placeholder="service.update" {...field("action")} />
                <TextInput label="Target id" placeholder="uuid" {...field("targetId")} />
                <TextInput label="From" type="datetime-local" {...field("from")} />
                <TextInput label="To" type="datetime-local" {...field("to")} />
              </SimpleGrid>
              <Group mt="sm" gap="xs">
                <Button type="submit" size="xs" leftSection={<IconFilter size={14} />}>
                  Apply filters
                </Button>
                {filtered && (
                  <Button
                    size="xs"
                    variant="subtle"
                    leftSection={<IconX size={14} />}
                    onClick={() => {
                      setDraft(EMPTY);
                      setFilters(EMPTY);
                    }}
                  >
                    Clear filters
                  </Button>
                )}
              </Group>
            </form>
          </Card>
          <ApiErrorAlert error={events.error} mb="md" />
          {events.data && rows.length === 0 && (
            <Text c="dimmed" fz="sm">
              {filtered ? "No event matches these filters." : "Nothing recorded yet."}
            </Text>
          )}
          {rows.length > 0 && (
            <Card withBorder padding={0}>
              <Table.ScrollContainer minWidth={760} className="stack-on-phone">
                <Table verticalSpacing="xs" aria-label="audit events">
                  <Table.Thead>
                    <Table.Tr>
                      <Table.Th>
                        <span className="visually-hidden">Details</span>
                      </Table.Th>
                      <Table.Th>When</Table.Th>
                      <Table.Th>Actor</Table.Th>
                      <Table.Th>Action</Table.Th>
                      <Table.Th>Target</Table.Th>
                      <Table.Th>Origin</Table.Th>
                    </Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {rows.map((event) => (
                      <EventRow key={event.id} event={event} />
                    ))}
                  </Table.Tbody>
                </Table>
              </Table.ScrollContainer>
            </Card>
          )}
          {events.hasNextPage && (
            <Group justify="center" mt="md">
              <Button variant="default" onClick={() => void events.fetchNextPage()} loading={events.isFetchingNextPage}>
                Load more
              </Button>
            </Group>
          )}
        </>
      )}
    </>
  );
}
