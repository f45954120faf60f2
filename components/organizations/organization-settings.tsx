"use client";

import { Button, Card, Group, NativeSelect, Radio, Stack, Text, TextInput } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { notifications } from "@mantine/notifications";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { useCan, useWhoami } from "../auth/can";
import { ConfirmModal } from "../confirm-delete";
import { apiError } from "../errors";
import { PageHeader, Section } from "../page-header";
import { useTRPC } from "../trpc";
import { useInvalidate } from "../use-invalidate";
import { useSwitchOrganization } from "./use-switch-organization";
import { ApiErrorAlert } from "../api-error-alert";

const OWNERS_ONLY = "Only an OWNER can rename, transfer or delete the organization.";

function RenameForm({ name, canEdit }: { name: string; canEdit: boolean }) {
  const trpc = useTRPC();
  const invalidate = useInvalidate();
  const [value, setValue] = useState(name);
  useEffect(() => setValue(name), [name]);
  const rename = useMutation(
    trpc.organizations.rename.mutationOptions({
      onSuccess: async (renamed) => {
        notifications.show({ color: "green", message: `Organization renamed to ${renamed.name}` });
        await invalidate();
      },
    }),
  );
  const failure = rename.error ? apiError(rename.error) : null;
  return (
    <Card withBorder padding="lg">
      <form
        onSubmit={(event) => {
          event.preventDefault();
          rename.mutate({ name: value });
        }}
      >
        <Group align="flex-end" wrap="wrap">
          <TextInput
            label="Organization name"
            value={value}
            onChange={(event) => setValue(event.currentTarget.value)}
            error={failure?.fields.name ?? (failure && failure.message)}
            readOnly={!canEdit}
            maxLength={100}
            required
            w={320}
          />
          {canEdit && (
            <Button type="submit" loading={rename.isPending} disabled={value.trim() === name}>
              Rename
            </Button>
          )}
        </Group>
      </form>
    </Card>
  );
}

function TransferForm({ selfEmail }: { selfEmail: string }) {
  const trpc = useTRPC();
  const invalidate = useInvalidate();
  const members = useQuery(trpc.members.list.queryOptions({}));
  const others = (members.data ?? []).filter((member) => member.email !== selfEmail);
  const [email, setEmail] = useState("");
  const [confirming, confirm] = useDisclosure();
  const transfer = useMutation(trpc.organizations.transfer.mutationOptions());
  const chosen = email || others[0]?.email || "";
  if (members.data && others.length === 0) {
    return (
      <Text c="dimmed" fz="sm">
        No other member yet: invite someone first (Settings, Members), then hand the organization over.
      </Text>
    );
  }
  return (
    <Card withBorder padding="lg">
      <Group align="flex-end" wrap="wrap">
        <NativeSelect
          label="New owner"
          data={others.map((member) => ({ value: member.email, label: `${member.name} (${member.email}, ${member.role})` }))}
          value={chosen}
          onChange={(event) => setEmail(event.currentTarget.value)}
          w={360}
        />
        <Button variant="default" onClick={confirm.open} disabled={!chosen}>
          Transfer ownership
        </Button>
      </Group>
      <ConfirmModal
        opened={confirming}
        onClose={confirm.close}
        title="Transfer ownership"
        confirmLabel="Transfer"
        color="orange"
        onConfirm={async () => {
          const result = await transfer.mutateAsync({ email: chosen });
          notifications.show({ color: "green", message: `${result.owner} now owns the organization; you are an ${result.yourRole}` });
          await invalidate();
        }}
      >
        {chosen} becomes an OWNER of the organization and you become an ADMIN: you can no longer rename, transfer or delete it.
      </ConfirmModal>
    </Card>
  );
}

function DeleteOrganization({ organizationId, name }: { organizationId: string; name: string }) {
  const trpc = useTRPC();
  const switchTo = useSwitchOrganization();
  const mine = useQuery(trpc.organization.mine.queryOptions({}));
  const [opened, modal] = useDisclosure();
  const remove = useMutation(trpc.organizations.delete.mutationOptions());
  return (
    <Card withBorder padding="lg" style={{ borderColor: "var(--mantine-color-red-6)" }}>
      <Group justify="space-between" wrap="wrap">
        <Text fz="sm" maw={560}>
          Deletes every environment through a DELETE deployment (what runs is stopped and removed), then the organization with its projects, clusters, members
          and API tokens.
        </Text>
        <Button color="red" onClick={modal.open}>
          Delete organization
        </Button>
      </Group>
      <ConfirmModal
        opened={opened}
        onClose={modal.close}
        title={`Delete ${name}`}
        typeToConfirm={name}
        confirmLabel="Delete organization"
        onConfirm={async () => {
          const result = await remove.mutateAsync({ confirm: name });
          notifications.show({
            color: "green",
            message:
              result.status === "DELETED"
                ? `Organization ${name} deleted`
                : `Deleting ${name}: ${result.deploymentIds.length} environment(s) are being removed, then the organization goes`,
          });
          const next = mine.data?.find((organization) => organization.organizationId !== organizationId);
          await switchTo(next?.organizationId ?? null);
        }}
      >
        This deletes <strong>{name}</strong>, its projects, environments and everything they run. It cannot be undone.
      </ConfirmModal>
    </Card>
  );
}

function SignupSetting() {
  const trpc = useTRPC();
  const invalidate = useInvalidate();
  const settings = useQuery(trpc.instance.settings.queryOptions({}));
  const update = useMutation(
    trpc.instance.updateSettings.mutationOptions({
      onSuccess: async (saved) => {
        notifications.show({ color: "green", message: saved.signup === "OPEN" ? "Anyone may now sign up" : "Only invited people may now sign up" });
        await invalidate();
      },
    }),
  );
  if (!settings.data) return null;
  return (
    <Card withBorder padding="lg">
      <Radio.Group
        label="Who may create an account"
        description="Applies to the whole instance. Invitation links always work."
        value={settings.data.signup}
        onChange={(value) => update.mutate({ signup: value as "OPEN" | "INVITE_ONLY" })}
      >
        <Stack gap="xs" mt="xs">
          <Radio value="INVITE_ONLY" label="Only invited people" />
          <Radio value="OPEN" label="Anyone (sign-up page open); newcomers create their own organization" />
        </Stack>
      </Radio.Group>
      <ApiErrorAlert error={update.error} mt="sm" />
    </Card>
  );
}

export function OrganizationSettingsPage() {
  const trpc = useTRPC();
  const whoami = useWhoami();
  const isOwner = useCan("OWNER");
  const mine = useQuery(trpc.organization.mine.queryOptions({}));
  const account = useQuery(trpc.instance.account.queryOptions({}));
  const current = mine.data?.find((organization) => organization.organizationId === whoami.data?.organizationId);
  return (
    <>
      <PageHeader title="Organization" description={isOwner ? undefined : OWNERS_ONLY} />
      {current && (
        <>
          <Section title="Name">
            <RenameForm name={current.name} canEdit={isOwner} />
          </Section>
          {isOwner && account.data && (
            <Section title="Ownership" description="Hand the organization to another member.">
              <TransferForm selfEmail={account.data.email} />
            </Section>
          )}
          {isOwner && (
            <Section title="Danger zone">
              <DeleteOrganization organizationId={current.organizationId} name={current.name} />
            </Section>
          )}
        </>
      )}
      {account.data?.instanceAdmin && (
        <Section title="Instance" description="You are an instance admin: these settings apply to every organization.">
          <SignupSetting />
        </Section>
      )}
    </>
  );
}
