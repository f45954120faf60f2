"use client";

import {
  ActionIcon,
  Alert,
  Badge,
  Button,
  Card,
  Code,
  Group,
  Loader,
  ScrollArea,
  SimpleGrid,
  Stack,
  Table,
  Text,
  Tooltip,
  type MantineColor,
} from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { IconChevronDown, IconChevronRight, IconRepeat } from "@tabler/icons-react";
import { useMutation, useQueries, useQuery, useQueryClient } from "@tanstack/react-query";
import { Fragment, useState } from "react";
import { apiError } from "../errors";
import { RelativeTime } from "../relative-time";
import { useTRPC } from "../trpc";
import { prettyJson, type Delivery } from "./outcome";

const PAGE_SIZE = 25;

const STATUS_COLORS: Record<Delivery["status"], MantineColor> = { PENDING: "blue", PROCESSED: "green", IGNORED: "gray", FAILED: "red" };

export function DeliveryStatusBadge({ status }: { status: Delivery["status"] }) {
  return (
    <Badge
      color={STATUS_COLORS[status]}
      variant="light"
      size="sm"
      leftSection={status === "PENDING" ? <Loader size={10} color="blue" type="oval" aria-hidden /> : undefined}
      data-status={status}
    >
      {status.charAt(0) + status.slice(1).toLowerCase()}
    </Badge>
  );
}

/** One delivery whole: its headers and its payload as received, pretty-printed. */
function DeliveryDetail({ deliveryId }: { deliveryId: string }) {
  const trpc = useTRPC();
  const detail = useQuery(trpc.git.delivery.queryOptions({ deliveryId }));
  if (detail.error) return <Alert color="red">{apiError(detail.error).message}</Alert>;
  if (!detail.data) return <Loader size="sm" />;
  const headers = Object.entries(detail.data.headers).sort(([a], [b]) => a.localeCompare(b));
  return (
    <Stack gap="sm" py="xs">
      <SimpleGrid cols={{ base: 2, md: 4 }} spacing="xs">
        <Text fz="xs">
          <Text span c="dimmed" fz="xs">
            Attempts{" "}
          </Text>
          {detail.data.attempts}
        </Text>
        <Text fz="xs">
          <Text span c="dimmed" fz="xs">
            Processed{" "}
          </Text>
          <RelativeTime value={detail.data.processedAt} fallback="not yet" />
        </Text>
      </SimpleGrid>
      {detail.data.outcome && (
        <Stack gap={4}>
          <Text fz="xs" c="dimmed" fw={600} tt="uppercase">
            Outcome
          </Text>
          <Code block>{JSON.stringify(detail.data.outcome, null, 2)}</Code>
        </Stack>
      )}
      <Stack gap={4}>
        <Text fz="xs" c="dimmed" fw={600} tt="uppercase">
          Headers
        </Text>
        <Code block aria-label="Delivery headers">
          {headers.map(([key, value]) => `${key}: ${value}`).join("\n")}
        </Code>
      </Stack>
      <Stack gap={4}>
        <Text fz="xs" c="dimmed" fw={600} tt="uppercase">
          Payload
        </Text>
        <ScrollArea.Autosize mah={420} type="auto">
          <Code block aria-label="Delivery payload">
            {prettyJson(detail.data.payload)}
          </Code>
        </ScrollArea.Autosize>
      </Stack>
    </Stack>
  );
}

/** A connection's webhook deliveries, newest first, a page at a time; a row opens to its headers and payload. */
export function Deliveries({ connectionId, connectionName }: { connectionId: string; connectionName: string }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  // Each page starts before the last delivery of the page above it (the API pages by sequence number).
  const [befores, setBefores] = useState<(number | undefined)[]>([undefined]);
  const [open, setOpen] = useState<string | null>(null);
  const pages = useQueries({
    queries: befores.map((before) => ({
      ...trpc.git.deliveries.queryOptions({ connectionId, limit: PAGE_SIZE, before }),
      refetchInterval: before === undefined ? 10_000 : false,
    })),
  });
  const redeliver = useMutation(
    trpc.git.redeliver.mutationOptions({
      onSuccess: async (delivery) => {
        notifications.show({ message: `Delivery ${delivery.deliveryId} is queued to be processed again.` });
        await queryClient.invalidateQueries({ queryKey: trpc.git.deliveries.queryKey() });
        await queryClient.invalidateQueries({ queryKey: trpc.git.delivery.queryKey({ deliveryId: delivery.id }) });
      },
      onError: (error) => notifications.show({ color: "red", title: "Not redelivered", message: apiError(error).message }),
    }),
  );
  const seen = new Set<string>();
  const deliveries = pages.flatMap((page) => page.data ?? []).filter((delivery) => !seen.has(delivery.id) && seen.add(delivery.id));
  const last = pages[pages.length - 1];
  const error = pages.find((page) => page.error)?.error;
  const hasMore = last?.data?.length === PAGE_SIZE;

  if (error) return <Alert color="red">{apiError(error).message}</Alert>;
  if (pages[0]?.isLoading) return <Loader size="sm" />;
  if (deliveries.length === 0)
    return (
      <Text c="dimmed" fz="sm">
        No delivery yet. Once the webhook is configured, the provider&apos;s deliveries appear here (GitHub sends a ping first).
      </Text>
    );
  return (
    <Stack gap="sm">
      <Card withBorder padding={0}>
        <Table.ScrollContainer minWidth={760}>
          <Table verticalSpacing="xs" aria-label={`Deliveries to ${connectionName}`} highlightOnHover>
            <Table.Thead>
              <Table.Tr>
                <Table.Th w={32} />
                <Table.Th>Event</Table.Th>
                <Table.Th>Delivery</Table.Th>
                <Table.Th>Status</Table.Th>
                <Table.Th>Outcome</Table.Th>
                <Table.Th>Received</Table.Th>
                <Table.Th w={60} />
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {deliveries.map((delivery) => {
                const expanded = open === delivery.id;
                return (
                  <Fragment key={delivery.id}>
                    <Table.Tr style={{ cursor: "pointer" }} onClick={() => setOpen(expanded ? null : delivery.id)}>
                      <Table.Td>
                        <ActionIcon
                          variant="subtle"
                          color="gray"
                          size="sm"
                          aria-label={`${expanded ? "Hide" : "Show"} delivery ${delivery.deliveryId}`}
                          aria-expanded={expanded}
                          onClick={(event) => {
                            event.stopPropagation();
                            setOpen(expanded ? null : delivery.id);
                          }}
                        >
                          {expanded ? <IconChevronDown size={14} /> : <IconChevronRight size={14} />}
                        </ActionIcon>
                      </Table.Td>
                      <Table.Td>
                        <Code>{delivery.event}</Code>
                      </Table.Td>
                      <Table.Td>
                        <Text fz="xs" ff="monospace" className="break-anywhere">
                          {delivery.deliveryId}
                        </Text>
                      </Table.Td>
                      <Table.Td>
                        <DeliveryStatusBadge status={delivery.status} />
                      </Table.Td>
                      <Table.Td>
                        <Text fz="sm" c={delivery.status === "FAILED" ? "red" : undefined} lineClamp={2}>
                          {delivery.summary || "—"}
                        </Text>
                      </Table.Td>
                      <Table.Td>
                        <Text fz="sm">
                          <RelativeTime value={delivery.receivedAt} />
                        </Text>
                      </Table.Td>
                      <Table.Td>
                        <Tooltip label="Redeliver: process it again" withArrow>
                          <ActionIcon
                            variant="subtle"
                            aria-label={`Redeliver ${delivery.deliveryId}`}
                            loading={redeliver.isPending && redeliver.variables?.deliveryId === delivery.id}
                            onClick={(event) => {
                              event.stopPropagation();
                              redeliver.mutate({ deliveryId: delivery.id });
                            }}
                          >
                            <IconRepeat size={16} />
                          </ActionIcon>
                        </Tooltip>
                      </Table.Td>
                    </Table.Tr>
                    {expanded && (
                      <Table.Tr>
                        <Table.Td colSpan={7}>
                          <DeliveryDetail deliveryId={delivery.id} />
                        </Table.Td>
                      </Table.Tr>
                    )}
                  </Fragment>
                );
              })}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      </Card>
      {hasMore && (
        <Group justify="center">
          <Button
            variant="default"
            size="xs"
            loading={last?.isFetching}
            onClick={() => setBefores((current) => [...current, last!.data![last!.data!.length - 1]!.seq])}
          >
            Load more
          </Button>
        </Group>
      )}
    </Stack>
  );
}
