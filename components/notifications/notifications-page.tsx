"use client";

import {
  Alert,
  Badge,
  Button,
  Card,
  Checkbox,
  Group,
  NativeSelect,
  NumberInput,
  PasswordInput,
  Stack,
  Table,
  Text,
  TextInput,
  type MantineColor,
} from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { IconSend, IconTrash } from "@tabler/icons-react";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import type { Inputs, Outputs } from "../api-types";
import { Can } from "../auth/can";
import { createRuleInput } from "../../server/notifications/rule-input";
import { apiError } from "../errors";
import { apiSchemaResolver, useApiForm } from "../forms/use-api-form";
import { PageHeader, Section } from "../page-header";
import { RelativeTime } from "../relative-time";
import { ShowOnce } from "../show-once";
import { useTRPC } from "../trpc";
import { useInvalidate } from "../use-invalidate";
import { ApiErrorAlert } from "../api-error-alert";

type Rule = Outputs["notifications"]["list"][number];
type Delivery = Outputs["notifications"]["deliveries"][number];
type EventName = Inputs["notifications"]["create"]["events"][number];

/** The channels the form offers, as the API names them. */
const FORM_CHANNELS = [
  { value: "webhook", label: "Generic webhook (signed)" },
  { value: "slack", label: "Slack-compatible incoming webhook" },
  { value: "discord", label: "Discord webhook" },
  { value: "email", label: "Email (SMTP)" },
] as const;
type FormChannel = (typeof FORM_CHANNELS)[number]["value"];

const STATUS_COLORS: Record<Delivery["status"], MantineColor> = { PENDING: "blue", DELIVERED: "green", FAILED: "red" };

type RuleValues = {
  name: string;
  channel: FormChannel;
  url: string;
  smtpHost: string;
  smtpPort: number | string;
  smtpSecure: boolean;
  smtpUser: string;
  smtpPassword: string;
  from: string;
  to: string;
  events: string[];
};

const INITIAL: RuleValues = {
  name: "",
  channel: "webhook",
  url: "",
  smtpHost: "",
  smtpPort: 587,
  smtpSecure: false,
  smtpUser: "",
  smtpPassword: "",
  from: "",
  to: "",
  events: ["deployment.failed"],
};

/** Where the API's issues go, by input path. */
const PATHS = [
  ["name", "name"],
  ["events", "events"],
  ["channel.url", "url"],
  ["channel.smtp.host", "smtpHost"],
  ["channel.smtp.port", "smtpPort"],
  ["channel.smtp.user", "smtpUser"],
  ["channel.smtp.password", "smtpPassword"],
  ["channel.from", "from"],
  ["channel.to", "to"],
] as const;

/** The form's values as `notifications.create` takes them; empty optional fields are left out. */
function toInput(projectId: string, values: RuleValues): Inputs["notifications"]["create"] {
  const channel: Inputs["notifications"]["create"]["channel"] =
    values.channel === "email"
      ? {
          type: "email",
          smtp: {
            host: values.smtpHost.trim(),
            port: values.smtpPort === "" ? Number.NaN : Number(values.smtpPort),
            secure: values.smtpSecure,
            ...(values.smtpUser ? { user: values.smtpUser } : {}),
            ...(values.smtpPassword ? { password: values.smtpPassword } : {}),
          },
          from: values.from.trim(),
          to: values.to.split(/[\s,;]+/).filter(Boolean),
        }
      : { type: values.channel, url: values.url.trim() };
  return { projectId, name: values.name, events: values.events as EventName[], channel, enabled: true };
}

function AddRuleForm({ projectId, events, onSecret }: { projectId: string; events: string[]; onSecret: (secret: string) => void }) {
  const trpc = useTRPC();
  const invalidate = useInvalidate();
  const create = useMutation(
    trpc.notifications.create.mutationOptions({
      onSuccess: async ({ rule, secret }) => {
        notifications.show({ color: "green", message: `Rule ${rule.name} added` });
        form.reset();
        if (secret) onSecret(secret);
        await invalidate();
      },
    }),
  );
  const failure = create.error ? apiError(create.error) : null;
  const { form, input, unmatchedServerError } = useApiForm({
    initialValues: INITIAL,
    validate: apiSchemaResolver(createRuleInput, (values: RuleValues) => toInput(projectId, values), PATHS),
    paths: PATHS,
    failure,
  });
  const email = form.values.channel === "email";
  return (
    <Card
      withBorder
      padding="md"
      component="form"
      aria-label="Add a notification rule"
      noValidate
      onSubmit={form.onSubmit((values) => create.mutate(toInput(projectId, values)))}
    >
      <Stack gap="sm">
        <Group grow align="flex-start">
          <TextInput label="Name" required {...input("name")} />
          <NativeSelect label="Channel" data={[...FORM_CHANNELS]} {...form.getInputProps("channel")} />
        </Group>
        {email ? (
          <>
            <Group grow align="flex-start">
              <TextInput label="SMTP host" required placeholder="smtp.example.com" {...input("smtpHost")} />
              <NumberInput label="SMTP port" required min={1} max={65535} allowDecimal={false} {...input("smtpPort")} />
            </Group>
            <Checkbox
              label="TLS from the first byte (port 465)"
              description="Otherwise STARTTLS is used when the server offers it."
              {...form.getInputProps("smtpSecure", { type: "checkbox" })}
            />
            <Group grow align="flex-start">
              <TextInput label="SMTP user" autoComplete="off" {...input("smtpUser")} />
              <PasswordInput label="SMTP password" autoComplete="new-password" description="Stored encrypted, never shown again." {...input("smtpPassword")} />
            </Group>
            <Group grow align="flex-start">
              <TextInput label="From" required type="email" placeholder="slipway@example.com" {...input("from")} />
              <TextInput label="To" required description="One or more addresses, separated by commas." placeholder="ops@example.com" {...input("to")} />
            </Group>
          </>
        ) : (
          <TextInput
            label="Webhook URL"
            required
            type="url"
            description="Stored encrypted; only its host is shown afterwards. Private and loopback addresses are refused unless the instance allows them."
            {...input("url")}
          />
        )}
        <Checkbox.Group label="Events" {...input("events")}>
          <Group gap="md" mt={4}>
            {events.map((event) => (
              <Checkbox key={event} value={event} label={event} />
            ))}
          </Group>
        </Checkbox.Group>
        {failure && unmatchedServerError && (
          <Alert color="red" role="alert">
            {failure.message}
          </Alert>
        )}
        <Group>
          <Button type="submit" loading={create.isPending}>
            Add rule
          </Button>
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
        <ApiErrorAlert error={rules.error} />
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
