"use client";

import { Alert, Anchor, Button, Stack, Text } from "@mantine/core";
import { useMutation, useQuery } from "@tanstack/react-query";
import { signIn } from "next-auth/react";
import Link from "next/link";
import { useState } from "react";
import { apiError } from "../errors";
import { useTRPC } from "../trpc";
import { AccountFields, type AccountDraft } from "./account-fields";
import { AuthFrame } from "./auth-frame";

/**
 * Creates an account where the instance lets anyone sign up (Settings, Organization, Instance),
 * then signs in; the dashboard then asks the newcomer to create their organization.
 */
export function SignUpForm() {
  const trpc = useTRPC();
  const settings = useQuery(trpc.instance.settings.queryOptions({}));
  const [account, setAccount] = useState<AccountDraft>({ name: "", email: "", password: "" });
  const { name, email, password } = account;
  const [signInError, setSignInError] = useState<string | null>(null);
  const signUp = useMutation(
    trpc.instance.signUp.mutationOptions({
      onSuccess: async () => {
        const result = await signIn("credentials", { email, password, redirect: false });
        if (!result || result.error) {
          setSignInError("Your account was created, but signing in failed. Sign in with your email and password.");
          return;
        }
        window.location.assign("/");
      },
    }),
  );
  const failure = signUp.error ? apiError(signUp.error) : null;

  if (settings.data?.signup === "INVITE_ONLY") {
    return (
      <AuthFrame title="Sign-up is by invitation" subtitle="On this instance, accounts are created from an invitation link a member sends you.">
        <Anchor component={Link} href="/signin" fz="sm">
          Back to sign in
        </Anchor>
      </AuthFrame>
    );
  }
  return (
    <AuthFrame title="Create an account" subtitle="Then create your organization, or join one with an invitation link.">
      <form
        onSubmit={(event) => {
          event.preventDefault();
          signUp.mutate({ name, email: email.trim(), password });
        }}
      >
        <Stack gap="md">
          <AccountFields value={account} onChange={setAccount} errors={failure?.fields ?? {}} autoFocus />
          {(signInError || (failure && Object.keys(failure.fields).length === 0)) && (
            <Alert color="red" role="alert">
              {signInError ?? failure?.message}
            </Alert>
          )}
          <Button type="submit" loading={signUp.isPending} fullWidth>
            Create account
          </Button>
          <Text fz="sm" c="dimmed" ta="center">
            Have an account?{" "}
            <Anchor component={Link} href="/signin" fz="sm">
              Sign in
            </Anchor>
          </Text>
        </Stack>
      </form>
    </AuthFrame>
  );
}
