"use client";

import { Alert, Anchor, Button, Group, Stack, Text } from "@mantine/core";
import { useMutation, useQuery } from "@tanstack/react-query";
import { signIn, signOut } from "next-auth/react";
import Link from "next/link";
import { useState } from "react";
import { RoleBadge } from "../auth/role-badge";
import { apiError, isUnauthorized } from "../errors";
import { chooseOrganization } from "../organizations/organization-cookie";
import { formatAbsolute } from "../relative-time";
import { AccountFields, type AccountDraft } from "../signin/account-fields";
import { AuthFrame } from "../signin/auth-frame";
import { useTRPC } from "../trpc";
import { ApiErrorAlert } from "../api-error-alert";

/** Enter the organization just joined: its id in the switcher's cookie, then a fresh load of the dashboard. */
function enter(organizationId: string) {
  chooseOrganization(organizationId);
  window.location.assign("/");
}

function NewAccountForm({ token }: { token: string }) {
  const trpc = useTRPC();
  const [account, setAccount] = useState<AccountDraft>({ name: "", email: "", password: "" });
  const { name, email, password } = account;
  const [signInError, setSignInError] = useState<string | null>(null);
  const accept = useMutation(
    trpc.invites.accept.mutationOptions({
      onSuccess: async (joined) => {
        const result = await signIn("credentials", { email, password, redirect: false });
        if (!result || result.error) {
          setSignInError("Your account was created, but signing in failed. Sign in with your email and password.");
          return;
        }
        enter(joined.organizationId);
      },
    }),
  );
  const failure = accept.error ? apiError(accept.error) : null;
  const passwordError = password.length > 0 && password.length < 10 ? "Use at least 10 characters" : null;
  return (
    <form
      onSubmit={(event) => {
        event.preventDefault();
        if (!passwordError) accept.mutate({ token, name: name.trim(), email: email.trim(), password });
      }}
    >
      <Stack gap="md">
        <AccountFields value={account} onChange={setAccount} errors={{ ...failure?.fields, password: passwordError ?? failure?.fields.password }} />
        {failure && Object.keys(failure.fields).length === 0 && (
          <Alert color="red" role="alert">
            {failure.message}
          </Alert>
        )}
        {signInError && (
          <Alert color="yellow" role="alert">
            {signInError}{" "}
            <Anchor component={Link} href="/signin">
              Sign in
            </Anchor>
          </Alert>
        )}
        <Button type="submit" loading={accept.isPending} fullWidth>
          Create account and join
        </Button>
      </Stack>
    </form>
  );
}

/** `/invite/<token>`: what the invitation is for, then join as the signed-in user or as a new account. */
export function AcceptInvite({ token }: { token: string }) {
  const trpc = useTRPC();
  const preview = useQuery(trpc.invites.preview.queryOptions({ token }, { retry: false }));
  const whoami = useQuery(trpc.organization.whoami.queryOptions({}, { retry: false }));
  const accept = useMutation(trpc.invites.accept.mutationOptions({ onSuccess: (joined) => enter(joined.organizationId) }));
  const signedIn = whoami.data !== undefined;
  const anonymous = isUnauthorized(whoami.error);

  if (preview.error)
    return (
      <AuthFrame title="Invitation not valid">
        <Alert color="red" role="alert">
          {apiError(preview.error).message}. Ask whoever invited you for a new link.
        </Alert>
        <Anchor component={Link} href="/signin" fz="sm">
          Go to sign-in
        </Anchor>
      </AuthFrame>
    );
  if (!preview.data) return <AuthFrame title="Invitation">{<Text c="dimmed">Loading the invitation…</Text>}</AuthFrame>;

  return (
    <AuthFrame
      title={`Join ${preview.data.organizationName}`}
      subtitle={
        <>
          You are invited to {preview.data.organizationName} on Slipway. The link works until {formatAbsolute(preview.data.expiresAt)}.
        </>
      }
    >
      <Group gap="xs">
        <Text fz="sm">Your role:</Text>
        <RoleBadge role={preview.data.role} />
      </Group>
      {signedIn && (
        <Stack gap="sm">
          <Text fz="sm">
            Signed in as <strong>{whoami.data?.actor}</strong>.
          </Text>
          <ApiErrorAlert error={accept.error} />
          <Button onClick={() => accept.mutate({ token })} loading={accept.isPending} fullWidth>
            Accept invitation
          </Button>
          <Button variant="subtle" color="gray" onClick={() => void signOut({ redirect: false }).then(() => window.location.reload())}>
            Not you? Sign out
          </Button>
        </Stack>
      )}
      {anonymous && (
        <>
          <NewAccountForm token={token} />
          <Text fz="sm" c="dimmed" ta="center">
            Already have an account?{" "}
            <Anchor component={Link} href={`/signin?next=${encodeURIComponent(`/invite/${token}`)}`}>
              Sign in first
            </Anchor>
          </Text>
        </>
      )}
    </AuthFrame>
  );
}
