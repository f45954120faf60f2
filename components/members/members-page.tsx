"use client";

import { ActionIcon, Button, Card, Group, Modal, NativeSelect, Stack, Table, Text, Tooltip } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { IconLink, IconTrash, IconX } from "@tabler/icons-react";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import type { Outputs } from "../api-types";
import { useCan, useWhoami, type Role } from "../auth/can";
import { ConfirmModal } from "../confirm-delete";
import { apiError } from "../errors";
import { PageHeader, Section } from "../page-header";
import { RelativeTime, formatAbsolute } from "../relative-time";
import { RoleBadge } from "../auth/role-badge";
import { ShowOnce } from "../show-once";
import { useTRPC } from "../trpc";
import { useInvalidate } from "../use-invalidate";
import { ROLE_HELP, ROLES, roleOptions } from "./roles";
import { ApiErrorAlert } from "../api-error-alert";

type Member = Outputs["members"]["list"][number];
type Invite = Outputs["members"]["invites"][number];

function InviteForm() {
  const trpc = useTRPC();
  const invalidate = useInvalidate();
  const [role, setRole] = useState<Role>("DEVELOPER");
  const [link, setLink] = useState<{ url: string; expiresAt: string } | null>(null);
  const invite = useMutation(
    trpc.members.invite.mutationOptions({
      onSuccess: async (result) => {
        setLink({ url: result.url, expiresAt: result.invite.expiresAt });
        await invalidate();
      },
    }),
  );
  return (
    <Card withBorder padding="lg">
      <form
        onSubmit={(event) => {
          event.preventDefault();
          invite.mutate({ role });
        }}
      >
        <Group align="flex-end" wrap="wrap">
          <NativeSelect
            label="Role of the new member"
            value={role}
            onChange={(event) => setRole(event.currentTarget.value as Role)}
            data={roleOptions()}
            w={320}
          />
          <Button type="submit" leftSection={<IconLink size={16} />} loading={invite.isPending}>
            Create invite link
          </Button>
        </Group>
      </form>
      <ApiErrorAlert error={invite.error} mt="md" />
      <Modal opened={link !== null} onClose={() => setLink(null)} title="Invitation created" size="lg" centered>
        {link && (
          <Stack>
            <Text fz="sm">
              Send this link to the person you invite. Whoever opens it joins as <strong>{role.toLowerCase()}</strong>; it works until{" "}
              {formatAbsolute(link.expiresAt)}.
            </Text>
            <ShowOnce
              value={link.url}
              label="Invitation link"
              warning="The link is shown only this once. Revoke the invitation below if it reaches the wrong person."
            />
            <Group justify="flex-end">
              <Button onClick={() => setLink(null)}>Done</Button>
            </Group>
          </Stack>
        )}
      </Modal>
    </Card>
  );
}

function PendingInvites() {
  const trpc = useTRPC();
  const invalidate = useInvalidate();
  const invites = useQuery(trpc.members.invites.queryOptions({}));
  const [revoking, setRevoking] = useState<Invite | null>(null);
  const revoke = useMutation(trpc.members.revokeInvite.mutationOptions({ onSuccess: invalidate }));
  return (
    <Section title="Pending invitations" description="Links created and not used yet.">
      <ApiErrorAlert error={invites.error} />
      {invites.data?.length === 0 && (
        <Text c="dimmed" fz="sm">
          No pending invitation.
        </Text>
      )}
      {invites.data && invites.data.length > 0 && (
        <Table verticalSpacing={6} aria-label="pending invitations">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Role</Table.Th>
              <Table.Th>Created</Table.Th>
              <Table.Th>Expires</Table.Th>
              <Table.Th w={80}>Actions</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {invites.data.map((invite) => (
              <Table.Tr key={invite.id}>
                <Table.Td>
                  <RoleBadge role={invite.role} />
                </Table.Td>
                <Table.Td>
                  <RelativeTime value={invite.createdAt} />
                </Table.Td>
                <Table.Td>
                  <RelativeTime value={invite.expiresAt} />
                </Table.Td>
                <Table.Td>
                  <Tooltip label="Revoke" withArrow>
                    <ActionIcon
                      variant="subtle"
                      color="red"
                      aria-label={`Revoke the ${invite.role.toLowerCase()} invitation created ${formatAbsolute(invite.createdAt)}`}
                      onClick={() => setRevoking(invite)}
                    >
                      <IconX size={16} />
                    </ActionIcon>
                  </Tooltip>
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      <ConfirmModal
        opened={revoking !== null}
        onClose={() => setRevoking(null)}
        title="Revoke invitation"
        confirmLabel="Revoke invitation"
        onConfirm={() => revoke.mutateAsync({ inviteId: revoking!.id })}
      >
        The {revoking?.role.toLowerCase()} invitation link stops working; nobody can join with it.
      </ConfirmModal>
    </Section>
  );
}

/** Members of the organization, their roles, and invitations by link. */
export function MembersPage() {
  const trpc = useTRPC();
  const invalidate = useInvalidate();
  const isAdmin = useCan("ADMIN");
  const me = useWhoami().data;
  const members = useQuery(trpc.members.list.queryOptions({}));
  const [removing, setRemoving] = useState<Member | null>(null);
  const changeRole = useMutation(
    trpc.members.changeRole.mutationOptions({
      onSuccess: async (changed) => {
        notifications.show({ color: "green", message: `Role changed to ${changed.role.toLowerCase()}` });
        await invalidate();
      },
      onError: (error) => notifications.show({ color: "red", title: "Role not changed", message: apiError(error).message }),
    }),
  );
  const remove = useMutation(trpc.members.remove.mutationOptions({ onSuccess: invalidate }));

  return (
    <>
      <PageHeader
        title="Members"
        crumbs={[{ label: "Settings" }, { label: "Members" }]}
        description="Who belongs to this organization, and what each role may do."
      />
      {isAdmin && (
        <Section title="Invite someone" description="Create a link with a role; whoever opens it signs up (or signs in) and joins.">
          <InviteForm />
        </Section>
      )}
      <Section title="Members">
        <ApiErrorAlert error={members.error} />
        {members.data && (
          <Card withBorder padding={0}>
            <Table.ScrollContainer minWidth={640}>
              <Table verticalSpacing="xs" aria-label="members">
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>Name</Table.Th>
                    <Table.Th>Email</Table.Th>
                    <Table.Th>Role</Table.Th>
                    <Table.Th>Joined</Table.Th>
                    {isAdmin && <Table.Th w={80}>Actions</Table.Th>}
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {members.data.map((member) => {
                    const self = member.email === me?.actor;
                    return (
                      <Table.Tr key={member.userId}>
                        <Table.Td>
                          <Text fz="sm" fw={500}>
                            {member.name}
                            {self && (
                              <Text span c="dimmed" fz="xs">
                                {" "}
                                (you)
                              </Text>
                            )}
                          </Text>
                        </Table.Td>
                        <Table.Td>
                          <Text fz="sm">{member.email}</Text>
                        </Table.Td>
                        <Table.Td>
                          {isAdmin && !self ? (
                            <NativeSelect
                              size="xs"
                              aria-label={`Role of ${member.email}`}
                              value={member.role}
                              onChange={(event) => changeRole.mutate({ userId: member.userId, role: event.currentTarget.value as Role })}
                              data={ROLES.map((role) => ({ value: role, label: role.toLowerCase() }))}
                              w={130}
                              title={ROLE_HELP[member.role]}
                            />
                          ) : (
                            <RoleBadge role={member.role} />
                          )}
                        </Table.Td>
                        <Table.Td>
                          <RelativeTime value={member.joinedAt} />
                        </Table.Td>
                        {isAdmin && (
                          <Table.Td>
                            {!self && (
                              <Tooltip label="Remove" withArrow>
                                <ActionIcon variant="subtle" color="red" aria-label={`Remove ${member.email}`} onClick={() => setRemoving(member)}>
                                  <IconTrash size={16} />
                                </ActionIcon>
                              </Tooltip>
                            )}
                          </Table.Td>
                        )}
                      </Table.Tr>
                    );
                  })}
                </Table.Tbody>
              </Table>
            </Table.ScrollContainer>
          </Card>
        )}
      </Section>
      {isAdmin && <PendingInvites />}
      <ConfirmModal
        opened={removing !== null}
        onClose={() => setRemoving(null)}
        title="Remove member"
        confirmLabel="Remove member"
        onConfirm={() => remove.mutateAsync({ userId: removing!.userId })}
      >
        <strong>{removing?.name}</strong> ({removing?.email}) loses access to this organization at once. Their account stays, and their past actions stay in the
        audit log.
      </ConfirmModal>
    </>
  );
}
