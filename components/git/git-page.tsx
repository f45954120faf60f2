"use client";

import {
  Alert,
  Badge,
  Button,
  Card,
  Checkbox,
  Group,
  List,
  Modal,
  NativeSelect,
  PasswordInput,
  SimpleGrid,
  Stack,
  Text,
  TextInput,
  Title,
} from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { notifications } from "@mantine/notifications";
import { IconBrandBitbucket, IconBrandGithub, IconBrandGitlab, IconGitBranch, IconPencil, IconPlus, IconRefresh, IconTrash } from "@tabler/icons-react";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useState, type ReactNode } from "react";
import type { Outputs } from "../api-types";
import { useCan } from "../auth/can";
import { ConfirmModal } from "../confirm-delete";
import { apiError } from "../errors";
import { PageHeader, Section } from "../page-header";
import { RelativeTime } from "../relative-time";
import { CopyField, ShowOnce } from "../show-once";
import { useTRPC } from "../trpc";
import { useInvalidate } from "../use-invalidate";
import { Deliveries } from "./deliveries";
import { PROVIDERS, PROVIDER_SETUP, providerLabel, type GitProvider } from "./outcome";
import { DialogFormFooter } from "../forms/dialog-form-footer";
import { ApiErrorAlert } from "../api-error-alert";

type Connection = Outputs["git"]["list"][number];
type WithSecret = Outputs["git"]["connect"];

const PROVIDER_ICONS: Record<GitProvider, ReactNode> = {
  github: <IconBrandGithub size={18} aria-hidden />,
  gitlab: <IconBrandGitlab size={18} aria-hidden />,
  bitbucket: <IconBrandBitbucket size={18} aria-hidden />,
  generic: <IconGitBranch size={18} aria-hidden />,
};

/** The webhook URL and its secret, shown once after a connection is made or its secret rotated. */
function SecretModal({ shown, onClose }: { shown: { result: WithSecret; rotated: boolean } | null; onClose: () => void }) {
  const connection = shown?.result.connection;
  return (
    <Modal
      opened={shown !== null}
      onClose={onClose}
      title={shown?.rotated ? `New webhook secret for ${connection?.name ?? ""}` : `Configure the webhook of ${connection?.name ?? ""}`}
      size="xl"
      centered
    >
      {shown && connection && (
        <Stack>
          <Text fz="sm">
            In {providerLabel(connection.provider)},{" "}
            {shown.rotated ? "replace the secret of the webhook" : "add a webhook (per repository, group or workspace)"} with content type{" "}
            <strong>application/json</strong>:
          </Text>
          <Stack gap={4}>
            <Text fz="sm" fw={500}>
              Payload URL
            </Text>
            <CopyField value={connection.webhookUrl} label="Webhook URL" />
          </Stack>
          <Stack gap={4}>
            <Text fz="sm" fw={500}>
              Secret
            </Text>
            <ShowOnce
              value={shown.result.secret}
              label="Webhook secret"
              warning={`It is shown only this once: Slipway keeps it sealed and never shows it again. ${shown.rotated ? "The previous secret no longer works: deliveries signed with it are refused until the provider uses this one." : "Rotate it to get a new one."}`}
            />
          </Stack>
          <List size="sm" spacing={4}>
            <List.Item>
              Checked with <strong>{PROVIDER_SETUP[connection.provider].header}</strong>
            </List.Item>
            <List.Item>Events: {PROVIDER_SETUP[connection.provider].events}</List.Item>
          </List>
          <Group justify="flex-end">
            <Button onClick={onClose}>I have configured it</Button>
          </Group>
        </Stack>
      )}
    </Modal>
  );
}

function ConnectModal({ onClose, onConnected }: { onClose: () => void; onConnected: (result: WithSecret) => void }) {
  const trpc = useTRPC();
  const invalidate = useInvalidate();
  const [provider, setProvider] = useState<GitProvider>("github");
  const [name, setName] = useState("github");
  const [apiBaseUrl, setApiBaseUrl] = useState("");
  const [apiToken, setApiToken] = useState("");
  const connect = useMutation(
    trpc.git.connect.mutationOptions({
      onSuccess: async (result) => {
        onConnected(result);
        await invalidate();
      },
    }),
  );
  const failure = connect.error ? apiError(connect.error) : null;
  return (
    <Modal opened onClose={onClose} title="Connect a git provider" centered>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          connect.mutate({ provider, name: name.trim(), apiBaseUrl: apiBaseUrl.trim() || undefined, apiToken: apiToken || undefined });
        }}
      >
        <Stack>
          <NativeSelect
            label="Provider"
            value={provider}
            onChange={(event) => {
              const next = event.currentTarget.value as GitProvider;
              if (name === provider) setName(next);
              setProvider(next);
            }}
            data={PROVIDERS}
          />
          <TextInput
            label="Name"
            description="One connection serves every repository of the provider."
            value={name}
            onChange={(event) => setName(event.currentTarget.value)}
            error={failure?.fields.name}
            maxLength={60}
            required
            data-autofocus
          />
          {provider !== "generic" && (
            <>
              <TextInput
                label="API base URL"
                description="Only for GitHub Enterprise or a self-managed GitLab; the public API otherwise."
                placeholder={provider === "gitlab" ? "https://gitlab.example.com/api/v4" : "https://github.example.com/api/v3"}
                value={apiBaseUrl}
                onChange={(event) => setApiBaseUrl(event.currentTarget.value)}
                error={failure?.fields.apiBaseUrl}
              />
              <PasswordInput
                label="API token"
                description="Optional: lets Slipway post commit statuses and a pull request comment with the preview's URLs."
                value={apiToken}
                onChange={(event) => setApiToken(event.currentTarget.value)}
                error={failure?.fields.apiToken}
                autoComplete="off"
              />
            </>
          )}
          <DialogFormFooter
            error={failure && Object.keys(failure.fields).length === 0 && failure.message}
            onCancel={onClose}
            submit="Connect"
            pending={connect.isPending}
            disabled={!name.trim()}
          />
        </Stack>
      </form>
    </Modal>
  );
}

function EditApiModal({ connection, onClose }: { connection: Connection; onClose: () => void }) {
  const trpc = useTRPC();
  const invalidate = useInvalidate();
  const [apiBaseUrl, setApiBaseUrl] = useState(connection.apiBaseUrl ?? "");
  const [apiToken, setApiToken] = useState("");
  const [removeToken, setRemoveToken] = useState(false);
  const update = useMutation(
    trpc.git.update.mutationOptions({
      onSuccess: async () => {
        notifications.show({ color: "green", message: `${connection.name} updated.` });
        await invalidate();
        onClose();
      },
    }),
  );
  const failure = update.error ? apiError(update.error) : null;
  return (
    <Modal opened onClose={onClose} title={`API access of ${connection.name}`} centered>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          update.mutate({
            connectionId: connection.id,
            apiBaseUrl: apiBaseUrl.trim() || null,
            apiToken: removeToken ? null : apiToken || undefined,
          });
        }}
      >
        <Stack>
          <TextInput
            label="API base URL"
            description="Empty for the provider's public API."
            value={apiBaseUrl}
            onChange={(event) => setApiBaseUrl(event.currentTarget.value)}
            error={failure?.fields.apiBaseUrl}
            data-autofocus
          />
          <PasswordInput
            label="API token"
            description={
              connection.hasApiToken
                ? "A token is set. Type a new one to replace it; leave empty to keep it."
                : "No token: Slipway only listens. Add one to post commit statuses and comments."
            }
            value={apiToken}
            onChange={(event) => setApiToken(event.currentTarget.value)}
            disabled={removeToken}
            error={failure?.fields.apiToken}
            autoComplete="off"
          />
          {connection.hasApiToken && (
            <Checkbox label="Remove the token" checked={removeToken} onChange={(event) => setRemoveToken(event.currentTarget.checked)} />
          )}
          <DialogFormFooter
            error={failure && Object.keys(failure.fields).length === 0 && failure.message}
            onCancel={onClose}
            submit="Save"
            pending={update.isPending}
          />
        </Stack>
      </form>
    </Modal>
  );
}

function Fact({ label, children }: { label: string; children: ReactNode }) {
  return (
    <Stack gap={0}>
      <Text fz="xs" c="dimmed">
        {label}
      </Text>
      <Text fz="sm" component="div">
        {children}
      </Text>
    </Stack>
  );
}

function ConnectionCard({ connection, onSecret }: { connection: Connection; onSecret: (result: WithSecret) => void }) {
  const trpc = useTRPC();
  const invalidate = useInvalidate();
  const [editing, editModal] = useDisclosure();
  const [rotating, rotateModal] = useDisclosure();
  const [deleting, deleteModal] = useDisclosure();
  const [showDeliveries, deliveriesToggle] = useDisclosure(true);
  const rotate = useMutation(trpc.git.rotateSecret.mutationOptions({ onSuccess: invalidate }));
  const remove = useMutation(trpc.git.delete.mutationOptions({ onSuccess: invalidate }));
  return (
    <Card withBorder padding="lg" component="article" aria-labelledby={`git-${connection.id}`}>
      <Stack gap="md">
        <Group justify="space-between" wrap="wrap">
          <Group gap="xs">
            {PROVIDER_ICONS[connection.provider]}
            <Title order={2} fz="md" id={`git-${connection.id}`}>
              {connection.name}
            </Title>
            <Badge variant="default" size="sm">
              {providerLabel(connection.provider)}
            </Badge>
          </Group>
          <Group gap="xs">
            <Button size="xs" variant="light" leftSection={<IconPencil size={14} />} onClick={editModal.open} aria-label={`API access of ${connection.name}`}>
              API access
            </Button>
            <Button
              size="xs"
              variant="light"
              leftSection={<IconRefresh size={14} />}
              onClick={rotateModal.open}
              aria-label={`Rotate secret of ${connection.name}`}
            >
              Rotate secret
            </Button>
            <Button
              size="xs"
              variant="subtle"
              color="red"
              leftSection={<IconTrash size={14} />}
              onClick={deleteModal.open}
              aria-label={`Disconnect ${connection.name}`}
            >
              Disconnect
            </Button>
          </Group>
        </Group>
        <Stack gap={4}>
          <Text fz="xs" c="dimmed">
            Webhook URL
          </Text>
          <CopyField value={connection.webhookUrl} label={`Webhook URL of ${connection.name}`} />
        </Stack>
        <SimpleGrid cols={{ base: 2, md: 4 }} spacing="xs">
          <Fact label="Refused deliveries">
            {connection.rejectedDeliveries > 0 ? (
              <Text span fz="sm" c="red">
                {connection.rejectedDeliveries} (last <RelativeTime value={connection.lastRejectedAt} />)
              </Text>
            ) : (
              "none"
            )}
          </Fact>
          <Fact label="API">{connection.apiBaseUrl ?? "public"}</Fact>
          <Fact label="API token">{connection.hasApiToken ? "set: statuses and comments are posted" : "none: listens only"}</Fact>
          <Fact label="Created">
            <RelativeTime value={connection.createdAt} />
          </Fact>
        </SimpleGrid>
        <Stack gap="xs">
          <Group justify="space-between">
            <Title order={3} fz="sm" fw={600}>
              Deliveries
            </Title>
            <Button size="compact-xs" variant="subtle" color="gray" onClick={deliveriesToggle.toggle} aria-expanded={showDeliveries}>
              {showDeliveries ? "Hide" : "Show"}
            </Button>
          </Group>
          {showDeliveries && <Deliveries connectionId={connection.id} connectionName={connection.name} />}
        </Stack>
      </Stack>
      {editing && <EditApiModal connection={connection} onClose={editModal.close} />}
      <ConfirmModal
        opened={rotating}
        onClose={rotateModal.close}
        title="Rotate webhook secret"
        color="blue"
        confirmLabel="Issue a new secret"
        onConfirm={async () => onSecret(await rotate.mutateAsync({ connectionId: connection.id }))}
      >
        A new secret replaces the current one at once: deliveries of <strong>{connection.name}</strong> are refused until the provider&apos;s webhook uses the
        new secret.
      </ConfirmModal>
      <ConfirmModal
        opened={deleting}
        onClose={deleteModal.close}
        title="Disconnect git provider"
        typeToConfirm={connection.name}
        confirmLabel="Disconnect"
        onConfirm={() => remove.mutateAsync({ connectionId: connection.id })}
      >
        The webhook of <strong>{connection.name}</strong> stops being accepted: pushes no longer deploy and pull requests no longer create previews. Its stored
        deliveries are deleted. Services and existing preview environments stay.
      </ConfirmModal>
    </Card>
  );
}

/** Git providers of the organization: their webhooks, deliveries and secrets. */
export function GitPage() {
  const trpc = useTRPC();
  const isAdmin = useCan("ADMIN");
  const connections = useQuery({ ...trpc.git.list.queryOptions({}), enabled: isAdmin, refetchInterval: 15_000 });
  const [connecting, connectModal] = useDisclosure();
  const [shown, setShown] = useState<{ result: WithSecret; rotated: boolean } | null>(null);
  return (
    <>
      <PageHeader
        title="Git"
        crumbs={[{ label: "Settings" }, { label: "Git" }]}
        description="Connect a git provider once: pushes deploy the services that follow the pushed branch, pull requests create preview environments."
        actions={
          isAdmin && (
            <Button leftSection={<IconPlus size={16} />} onClick={connectModal.open}>
              Connect a provider
            </Button>
          )
        }
      />
      {!isAdmin ? (
        <Alert color="gray" title="Admins only">
          Only admins and owners manage git connections. Each service&apos;s &quot;Deploy on push&quot; settings are on its page.
        </Alert>
      ) : (
        <Section title="Connections">
          <ApiErrorAlert error={connections.error} />
          {connections.data?.length === 0 && (
            <Card withBorder padding="lg">
              <Text c="dimmed" fz="sm">
                No git provider connected yet. Connect one, then add its webhook URL and secret to the provider.
              </Text>
            </Card>
          )}
          <Stack>
            {connections.data?.map((connection) => (
              <ConnectionCard key={connection.id} connection={connection} onSecret={(result) => setShown({ result, rotated: true })} />
            ))}
          </Stack>
        </Section>
      )}
      {connecting && (
        <ConnectModal
          onClose={connectModal.close}
          onConnected={(result) => {
            connectModal.close();
            setShown({ result, rotated: false });
          }}
        />
      )}
      <SecretModal shown={shown} onClose={() => setShown(null)} />
    </>
  );
}
