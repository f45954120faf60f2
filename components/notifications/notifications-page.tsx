"use client";

import { Alert, Badge, Button, Card, Checkbox, Group, NativeSelect, Stack, Table, Text, TextInput, type MantineColor } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { IconSend, IconTrash } from "@tabler/icons-react";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import type { Inputs, Outputs } from "../api-types";
import { Can } from "../auth/can";
import { apiError } from "../errors";
import { PageHeader, Section } from "../page-header";
import { RelativeTime } from "../relative-time";
import { ShowOnce } from "../show-once";
import { useTRPC } from "../trpc";
import { useInvalidate } from "../use-invalidate";

type Rule = Outputs["notifications"]["list"][number];
type Delivery = Outputs["notifications"]["deliveries"][number];
type EventName = Inputs["notifications"]["create"]["events"][number];

/** The channels the form offers; email rules (SMTP settings) are added with the CLI or the API. */
const FORM_CHANNELS = [
  { value: "webhook", label: "Generic webhook (signed)" },
  { value: "slack", label: "Slack-compatible incoming webhook" },
  { value: "discord", label: "Discord webhook" },
] as const;

const STATUS_COLORS: Record<Delivery["status"], MantineColor> = { PENDING: "blue", DELIVERED: "green", FAILED: "red" };

function AddRuleForm({ projectId, events, onSecret }: { projectId: string; events: string[]; onSecret: (secret: string) => void }) {
  const trpc = useTRPC();
  const invalidate = useInvalidate();
  const [name, setName] = useState("");
  const [channel, setChannel] = useState<(typeof FORM_CHANNELS)[number]["value"]>("webhook");
  const [url, setUrl] = useState("");
  const [chosen, setChosen] = useState<string[]>(["deployment.failed"]);
  const create = useMutation(
    trpc.notifications.create.mutationOptions({
      onSuccess: async ({ rule, secret }) => {
        notifications.show({ color: "green", message: `Rule ${rule.name} added` });
        setName("");
        setUrl("");
        if (secret) onSecret(secret);
        await invalidate();
      },
    }),
  );
  return (
    <Card
      withBorder
      padding="md"
      component="form"
      aria-label="Add a notification rule"
      onSubmit={(event) => {
        event.preventDefault();
        create.mutate({ projectId, name, events: chosen as EventName[], channel: { type: channel, url }, enabled: true });
      }}
    >
      <Stack gap="sm">
        <Group grow align="flex-start">
          <TextInput label="Name" required value={name} onChange={(event) => setName(event.currentTarget.value)} />
          <NativeSelect
            label="Channel"
            data={[...FORM_CHANNELS]}
            value={channel}
            onChange={(event) => setChannel(event.currentTarget.value as typeof channel)}
          />
        </Group>
        <TextInput
          label="Webhook URL"
          required
          type="url"
          description="Stored encrypted; only its host is shown afterwards."
          value={url}
          onChange={(event) => setUrl(event.currentTarget.value)}
        />
        <Checkbox.Group label="Events" value={chosen} onChange={setChosen}>
          <Group gap="md" mt={4}>
            {events.map((event) => (
              <Checkbox key={event} value={event} label={event} />
            ))}
          </Group>
        </Checkbox.Group>
        {create.error && <Alert color="red">{apiError(create.error).message}</Alert>}
        <Group>
          <Button type="submit" loading={create.isPending} disabled={chosen.length === 0}>
            Add rule
          </Button>
          <Text c="dimmed" fz="xs">
            Email rules: slipway notify add &lt;project&gt; email … (see the README).
          </Text>
        </Group>
      </Stack>
    </Card>
  );
}

/** A rule's delivery log: each delivery with every attempt's answer. */
function DeliveryLog({ rule }: { rule: Rule }) {
  const trpc = useTRPC();
  const deliveries = useQuery({ ...trpc.notifications.deliveries.queryOptions({ ruleId: rule.id, limit: 20 }), refetchInterval: 2_000 });
  if (deliveries.error) return <Alert color="red">{apiError(deliveries.error).message}</Alert>;
  if (!deliveries.data?.length)
    return (
      <Text c="dimmed" fz="sm">
        No deliveries yet.
      </Text>
    );
  return (
    <Table aria-label={`Deliveries of ${rule.name}`} fz="sm">
      <Table.Thead>
        <Table.Tr>
          <Table.Th>Event</Table.Th>
          <Table.Th>Status</Table.Th>
          <Table.Th>Attempts</Table.Th>
          <Table.Th>Created</Table.Th>
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {deliveries.data.map((delivery) => (
          <Table.Tr key={delivery.id}>
            <Table.Td>{delivery.event}</Table.Td>
            <Table.Td>
              <Badge color={STATUS_COLORS[delivery.status]} variant="light" size="sm">
                {delivery.status.toLowerCase()}
              </Badge>
            </Table.Td>
            <Table.Td>
              {delivery.attempts.map((attempt) => (
                <Text key={attempt.attempt} fz="xs">
                  #{attempt.attempt}: {attempt.error ?? `HTTP ${attempt.responseStatus ?? "ok"}`}{" "}
                  {attempt.responseExcerpt ? `“${attempt.responseExcerpt.slice(0, 80)}”` : ""} in {attempt.durationMs} ms
                </Text>
              ))}
            </Table.Td>
            <Table.Td>
              <RelativeTime value={delivery.createdAt} />
            </Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

function RuleCard({ rule }: { rule: Rule }) {
  const trpc = useTRPC();
  const invalidate = useInvalidate();
  const test = useMutation(trpc.notifications.test.mutationOptions({ onSuccess: () => notifications.show({ message: `Test sent to ${rule.name}` }) }));
  const remove = useMutation(trpc.notifications.delete.mutationOptions({ onSuccess: () => invalidate() }));
  const toggle = useMutation(trpc.notifications.update.mutationOptions({ onSuccess: () => invalidate() }));
  return (
    <Card withBorder padding="md" component="article" aria-label={`Rule ${rule.name}`}>
      <Stack gap="xs">
        <Group justify="space-between">
          <Group gap="xs">
            <Text fw={600}>{rule.name}</Text>
            <Badge variant="light">{rule.channel}</Badge>
            <Text c="dimmed" fz="sm">
              {rule.target}
            </Text>
          </Group>
          <Can role="DEVELOPER">
            <Group gap="xs">
              <Checkbox label="Enabled" checked={rule.enabled} onChange={(event) => toggle.mutate({ ruleId: rule.id, enabled: event.currentTarget.checked })} />
              <Button
                size="xs"
                variant="default"
                leftSection={<IconSend size={14} />}
                loading={test.isPending}
                onClick={() => test.mutate({ ruleId: rule.id })}
              >
                Send a test
              </Button>
              <Button size="xs" variant="default" color="red" leftSection={<IconTrash size={14} />} onClick={() => remove.mutate({ ruleId: rule.id })}>
                Remove
              </Button>
            </Group>
          </Can>
        </Group>
        <Text fz="sm">On {rule.events.join(", ")}</Text>
        <DeliveryLog rule={rule} />
      </Stack>
    </Card>
  );
}

export function NotificationsPage({ projectId }: { projectId: string }) {
  const trpc = useTRPC();
  const rules = useQuery(trpc.notifications.list.queryOptions({ projectId }));
  const events = useQuery(trpc.notifications.events.queryOptions({}));
  const [secret, setSecret] = useState<string | null>(null);
  return (
    <>
      <PageHeader
        title="Notifications"
        crumbs={[{ label: "Overview", href: "/" }, { label: "Project", href: `/projects/${projectId}` }, { label: "Notifications" }]}
        description="Send this project's deployments, previews and engine disconnections to Slack, Discord, email or a signed webhook."
      />
      {secret && (
        <Card withBorder padding="md" mb="md">
          <ShowOnce value={secret} label="Signing secret" warning="Shown only now: receivers check the Slipway-Signature header with it." />
        </Card>
      )}
      <Can role="DEVELOPER">
        <Section title="Add a rule">
          <AddRuleForm projectId={projectId} events={events.data ?? []} onSecret={setSecret} />
        </Section>
      </Can>
      <Section title="Rules">
        {rules.error && <Alert color="red">{apiError(rules.error).message}</Alert>}
        {rules.data?.length === 0 && <Text c="dimmed">No rules yet.</Text>}
        <Stack>
          {rules.data?.map((rule) => (
            <RuleCard key={rule.id} rule={rule} />
          ))}
        </Stack>
      </Section>
    </>
  );
}
