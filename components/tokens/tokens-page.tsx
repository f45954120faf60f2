"use client";

import { Alert, Badge, Button, Card, Group, Modal, NativeSelect, Stack, Table, Text, TextInput, Tooltip, ActionIcon, Code } from "@mantine/core";
import { IconKey, IconTrash } from "@tabler/icons-react";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import type { Outputs } from "../api-types";
import { useCan, type Role } from "../auth/can";
import { RoleBadge } from "../auth/role-badge";
import { ConfirmModal } from "../confirm-delete";
import { apiError } from "../errors";
import { roleOptions } from "../members/roles";
import { PageHeader, Section } from "../page-header";
import { RelativeTime } from "../relative-time";
import { CopyField, ShowOnce } from "../show-once";
import { useTRPC } from "../trpc";
import { useInvalidate } from "../use-invalidate";
import { ApiErrorAlert } from "../api-error-alert";

type ApiToken = Outputs["organization"]["tokens"][number];

function CreateToken() {
  const trpc = useTRPC();
  const invalidate = useInvalidate();
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("DEVELOPER");
  const [created, setCreated] = useState<{ token: string; name: string } | null>(null);
  const create = useMutation(
    trpc.organization.createToken.mutationOptions({
      onSuccess: async (result) => {
        setCreated({ token: result.token, name: result.apiToken.name });
        setName("");
        await invalidate();
      },
    }),
  );
  const failure = create.error ? apiError(create.error) : null;
  return (
    <Card withBorder padding="lg">
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if (name.trim()) create.mutate({ name: name.trim(), role });
        }}
      >
        <Group align="flex-start" wrap="wrap">
          <TextInput
            label="Token name"
            description="Who or what uses it: ci, laptop, terraform…"
            placeholder="ci"
            value={name}
            onChange={(event) => setName(event.currentTarget.value)}
            error={failure?.fields.name}
            maxLength={100}
            required
            w={260}
          />
          <NativeSelect
            label="Role"
            description="What the token may do."
            value={role}
            onChange={(event) => setRole(event.currentTarget.value as Role)}
            data={roleOptions()}
            w={320}
          />
          <Button type="submit" leftSection={<IconKey size={16} />} loading={create.isPending} mt={44}>
            Create token
          </Button>
        </Group>
      </form>
      {failure && !failure.fields.name && (
        <Alert color="red" role="alert" mt="md">
          {failure.message}
        </Alert>
      )}
      <Modal opened={created !== null} onClose={() => setCreated(null)} title={`API token ${created?.name ?? ""}`} size="lg" centered>
        {created && (
          <Stack>
            <ShowOnce value={created.token} label="API token" />
            <Text fz="sm" c="dimmed">
              Use it as <Code>Authorization: Bearer …</Code> with the REST API. To log the CLI in, put it in <Code>SLIPWAY_TOKEN</Code> and run (on the standard
              input, it stays out of the process list):
            </Text>
            <CopyField value={`printf %s "$SLIPWAY_TOKEN" | npx slipway login --url ${window.location.origin} --token-stdin`} label="CLI login command" />
            <Group justify="flex-end">
              <Button onClick={() => setCreated(null)}>I have copied it</Button>
            </Group>
          </Stack>
        )}
      </Modal>
    </Card>
  );
}

/** API tokens of the organization: for the CLI, CI and scripts. Shown once, stored hashed. */
export function TokensPage() {
  const trpc = useTRPC();
  const invalidate = useInvalidate();
  const isAdmin = useCan("ADMIN");
  const tokens = useQuery({ ...trpc.organization.tokens.queryOptions({}), enabled: isAdmin });
  const [revoking, setRevoking] = useState<ApiToken | null>(null);
  const revoke = useMutation(trpc.organization.revokeToken.mutationOptions({ onSuccess: invalidate }));
  return (
    <>
      <PageHeader
        title="API tokens"
        crumbs={[{ label: "Settings" }, { label: "API tokens" }]}
        description="Tokens let the CLI, CI jobs and scripts act on this organization with a role."
      />
      {!isAdmin ? (
        <Alert color="gray" title="Admins only">
          Only admins and owners manage API tokens. Ask one to create a token for you.
        </Alert>
      ) : (
        <>
          <Section title="Create a token">
            <CreateToken />
          </Section>
          <Section title="Tokens">
            <ApiErrorAlert error={tokens.error} />
            {tokens.data?.length === 0 && (
              <Text c="dimmed" fz="sm">
                No token yet.
              </Text>
            )}
            {tokens.data && tokens.data.length > 0 && (
              <Card withBorder padding={0}>
                <Table.ScrollContainer minWidth={680}>
                  <Table verticalSpacing="xs" aria-label="API tokens">
                    <Table.Thead>
                      <Table.Tr>
                        <Table.Th>Name</Table.Th>
                        <Table.Th>Role</Table.Th>
                        <Table.Th>Prefix</Table.Th>
                        <Table.Th>Created</Table.Th>
                        <Table.Th>Last used</Table.Th>
                        <Table.Th w={80}>Actions</Table.Th>
                      </Table.Tr>
                    </Table.Thead>
                    <Table.Tbody>
                      {tokens.data.map((token) => (
                        <Table.Tr key={token.id} opacity={token.revokedAt ? 0.6 : 1}>
                          <Table.Td>
                            <Group gap={6}>
                              <Text fz="sm" fw={500}>
                                {token.name}
                              </Text>
                              {token.revokedAt && (
                                <Badge color="red" variant="light" size="xs">
                                  revoked
                                </Badge>
                              )}
                            </Group>
                          </Table.Td>
                          <Table.Td>
                            <RoleBadge role={token.role} />
                          </Table.Td>
                          <Table.Td>
                            <Code>{token.prefix}…</Code>
                          </Table.Td>
                          <Table.Td>
                            <RelativeTime value={token.createdAt} />
                          </Table.Td>
                          <Table.Td>
                            <RelativeTime value={token.lastUsedAt} />
                          </Table.Td>
                          <Table.Td>
                            {!token.revokedAt && (
                              <Tooltip label="Revoke" withArrow>
                                <ActionIcon variant="subtle" color="red" aria-label={`Revoke token ${token.name}`} onClick={() => setRevoking(token)}>
                                  <IconTrash size={16} />
                                </ActionIcon>
                              </Tooltip>
                            )}
                          </Table.Td>
                        </Table.Tr>
                      ))}
                    </Table.Tbody>
                  </Table>
                </Table.ScrollContainer>
              </Card>
            )}
          </Section>
        </>
      )}
      <ConfirmModal
        opened={revoking !== null}
        onClose={() => setRevoking(null)}
        title="Revoke API token"
        confirmLabel="Revoke token"
        onConfirm={() => revoke.mutateAsync({ tokenId: revoking!.id })}
      >
        The token <strong>{revoking?.name}</strong> stops working at once: every CLI, CI job or script using it is refused from now on.
      </ConfirmModal>
    </>
  );
}
