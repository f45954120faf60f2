"use client";

import { Badge, Button, Card, Group, Modal, PasswordInput, Stack, Text, TextInput } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { notifications } from "@mantine/notifications";
import { IconKey, IconPencil, IconPlus, IconTrash } from "@tabler/icons-react";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { createDnsProviderInput } from "../../server/domains/dns-providers/inputs";
import type { Outputs } from "../api-types";
import { useCan } from "../auth/can";
import { ConfirmModal } from "../confirm-delete";
import { apiError } from "../errors";
import { apiSchemaResolver, useApiForm } from "../forms/use-api-form";
import { Section } from "../page-header";
import { useTRPC } from "../trpc";
import { useInvalidate } from "../use-invalidate";
import { DialogFormFooter } from "../forms/dialog-form-footer";
import { ApiErrorAlert } from "../api-error-alert";

export type DnsProvider = Outputs["dnsProviders"]["list"][number];

/**
 * The organization's DNS providers on the Domains tab (issue 16, part 1): the PowerDNS API a
 * domain's ACME DNS-01 record is published through. The token is typed into a masked field,
 * checked against the zone before it is saved, and never shown again: only its last characters.
 */
export function DnsProviders() {
  const trpc = useTRPC();
  const canManage = useCan("ADMIN");
  const providers = useQuery(trpc.dnsProviders.list.queryOptions({}));
  const [adding, addModal] = useDisclosure();
  return (
    <Section
      title="DNS providers"
      description="For the DNS-01 challenge: Slipway publishes the _acme-challenge TXT record through your DNS provider's API, waits until the zone's nameserver answers it, and removes it once the CA has looked, even when issuance fails. Needed for names the CA cannot reach over HTTP. Shared by the organization; admins manage them."
      actions={
        canManage ? (
          <Button size="xs" variant="default" leftSection={<IconPlus size={14} />} onClick={addModal.open}>
            Add DNS provider
          </Button>
        ) : null
      }
    >
      <ApiErrorAlert error={providers.error} />
      {providers.data?.length === 0 && (
        <Text c="dimmed" fz="sm" py="sm">
          No DNS providers: domains use the HTTP-01 challenge, through this cluster&apos;s router.
        </Text>
      )}
      <Stack>
        {providers.data?.map((provider) => (
          <ProviderCard key={provider.id} provider={provider} canManage={canManage} />
        ))}
      </Stack>
      {adding && <ProviderModal onClose={addModal.close} />}
    </Section>
  );
}

function ProviderCard({ provider, canManage }: { provider: DnsProvider; canManage: boolean }) {
  const trpc = useTRPC();
  const invalidate = useInvalidate();
  const [editing, editModal] = useDisclosure();
  const [removing, setRemoving] = useState(false);
  const remove = useMutation(trpc.dnsProviders.remove.mutationOptions({ onSuccess: invalidate }));
  return (
    <Card withBorder padding="sm" component="article" aria-label={`DNS provider ${provider.name}`}>
      <Group justify="space-between" wrap="wrap" gap="xs">
        <Stack gap={2}>
          <Group gap="xs">
            <Text fw={600}>{provider.name}</Text>
            <Badge variant="light">PowerDNS</Badge>
            <Text fz="sm" ff="monospace">
              {provider.zone}
            </Text>
          </Group>
          <Text fz="sm" c="dimmed" className="break-anywhere">
            API {provider.settings.apiUrl} · nameserver {provider.settings.nameserver ?? "the API's host, port 53"} · <IconKey size={12} aria-hidden /> token{" "}
            {provider.tokenHint}
          </Text>
        </Stack>
        {canManage && (
          <Group gap="xs">
            <Button size="xs" variant="default" leftSection={<IconPencil size={14} />} onClick={editModal.open}>
              Edit
            </Button>
            <Button size="xs" variant="subtle" color="red" leftSection={<IconTrash size={14} />} onClick={() => setRemoving(true)}>
              Remove
            </Button>
          </Group>
        )}
      </Group>
      {editing && <ProviderModal provider={provider} onClose={editModal.close} />}
      <ConfirmModal
        opened={removing}
        onClose={() => setRemoving(false)}
        title="Remove DNS provider"
        confirmLabel="Remove provider"
        onConfirm={() => remove.mutateAsync({ dnsProviderId: provider.id })}
      >
        Remove <strong>{provider.name}</strong> and its token? Domains using it must be switched to another challenge first.
      </ConfirmModal>
    </Card>
  );
}

type ProviderValues = { name: string; zone: string; apiUrl: string; serverId: string; nameserver: string; token: string };
type ProviderField = keyof ProviderValues;
const PROVIDER_PATHS = [
  ["name", "name"],
  ["zone", "zone"],
  ["settings.apiUrl", "apiUrl"],
  ["settings.serverId", "serverId"],
  ["settings.nameserver", "nameserver"],
  ["token", "token"],
] as const;

function inputOf(values: ProviderValues) {
  return {
    name: values.name,
    zone: values.zone,
    settings: {
      kind: "POWERDNS" as const,
      apiUrl: values.apiUrl,
      serverId: values.serverId || "localhost",
      ...(values.nameserver.trim() ? { nameserver: values.nameserver } : {}),
    },
    token: values.token,
  };
}

/** Adds a provider, or edits one: its token field left empty keeps the saved token. */
function ProviderModal({ provider, onClose }: { provider?: DnsProvider; onClose: () => void }) {
  const trpc = useTRPC();
  const invalidate = useInvalidate();
  const onSuccess = async (saved: DnsProvider) => {
    notifications.show({ color: "green", message: `${saved.name}: PowerDNS accepted the token, which is now stored encrypted` });
    await invalidate();
    onClose();
  };
  const create = useMutation(trpc.dnsProviders.create.mutationOptions({ onSuccess }));
  const update = useMutation(trpc.dnsProviders.update.mutationOptions({ onSuccess }));
  const pending = create.isPending || update.isPending;
  const failure = create.error ? apiError(create.error) : update.error ? apiError(update.error) : null;
  const { form, input, unmatchedServerError } = useApiForm<ProviderValues, ProviderField>({
    initialValues: {
      name: provider?.name ?? "",
      zone: provider?.zone ?? "",
      apiUrl: provider?.settings.apiUrl ?? "",
      serverId: provider?.settings.serverId ?? "localhost",
      nameserver: provider?.settings.nameserver ?? "",
      token: "",
    },
    // Editing: an empty token keeps the saved one, so the schema checks a placeholder in its place.
    validate: apiSchemaResolver(
      createDnsProviderInput,
      (values: ProviderValues) => inputOf(provider ? { ...values, token: values.token || "kept" } : values),
      PROVIDER_PATHS,
    ),
    paths: PROVIDER_PATHS,
    failure,
  });
  const submit = (values: ProviderValues) => {
    const { zone, settings, token } = inputOf(values);
    if (provider) update.mutate({ dnsProviderId: provider.id, zone, settings, ...(token ? { token } : {}) });
    else create.mutate(inputOf(values));
  };
  return (
    <Modal opened onClose={onClose} title={provider ? `Edit DNS provider ${provider.name}` : "Add DNS provider"} centered>
      <form onSubmit={form.onSubmit(submit)} noValidate>
        <Stack>
          <TextInput label="Name" placeholder="main" {...input("name")} disabled={Boolean(provider)} required data-autofocus autoComplete="off" />
          <TextInput
            label="Zone"
            description="Domains in this zone (the apex or names under it) may use this provider."
            placeholder="example.com"
            {...input("zone")}
            required
          />
          <TextInput
            label="PowerDNS API URL"
            description="PowerDNS Authoritative's webserver (api=yes), reachable from Slipway's workers."
            placeholder="http://ns1.example.com:8081"
            {...input("apiUrl")}
            required
          />
          <TextInput label="Server id" description="The server in the API's paths; localhost unless configured otherwise." {...input("serverId")} />
          <TextInput
            label="Nameserver"
            description="Where Slipway checks the record before the CA looks (IP address, optional port). Empty: the API's host on port 53."
            placeholder="192.0.2.1:53"
            {...input("nameserver")}
          />
          <PasswordInput
            label="API key"
            description={
              provider
                ? `Saved (${provider.tokenHint}); type a new key to replace it, or leave empty to keep it.`
                : "PowerDNS's api-key. Checked against the zone, then stored encrypted; it is never shown again."
            }
            {...input("token")}
            required={!provider}
            autoComplete="new-password"
          />
          <DialogFormFooter
            error={failure && unmatchedServerError && failure.message}
            errorTitle="Not saved"
            onCancel={onClose}
            submit={provider ? "Save" : "Add provider"}
            pending={pending}
          />
        </Stack>
      </form>
    </Modal>
  );
}
