"use client";

import { Alert, Anchor, Button, Divider, PasswordInput, Stack, Text, TextInput } from "@mantine/core";
import { IconBrandGithub } from "@tabler/icons-react";
import { useQuery } from "@tanstack/react-query";
import { signIn } from "next-auth/react";
import Link from "next/link";
import { useEffect, useState } from "react";
import { signInRefusalMessage } from "../../server/auth/sign-in-refusals";
import { useTRPC } from "../trpc";
import { AuthFrame } from "./auth-frame";

/** Whether Auth.js has a GitHub provider configured: the button shows only then. */
function useGithubConfigured(): boolean {
  const [configured, setConfigured] = useState(false);
  useEffect(() => {
    let live = true;
    fetch("/api/auth/providers")
      .then((response) => (response.ok ? (response.json() as Promise<Record<string, unknown>>) : {}))
      .then((providers) => live && setConfigured("github" in providers))
      .catch(() => {});
    return () => {
      live = false;
    };
  }, []);
  return configured;
}

/** Where to go after signing in: `?next=/invite/…` from pages that sent the visitor here, same-origin paths only. */
function nextPath(): string {
  const next = new URLSearchParams(window.location.search).get("next");
  return next && next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

/** What the server names a sign-in refused after too many failures, with the seconds to wait as `code` (server/auth/sessions.ts). */
const SIGN_IN_THROTTLED = "TooManyAttempts";

function inAWhile(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds <= 0) return "later";
  return seconds < 90 ? `in ${Math.ceil(seconds)} seconds` : `in ${Math.ceil(seconds / 60)} minutes`;
}

export function SignInForm() {
  const github = useGithubConfigured();
  const trpc = useTRPC();
  // The link to create an account shows only where the instance lets anyone sign up.
  const signupOpen = useQuery(trpc.instance.settings.queryOptions({})).data?.signup === "OPEN";
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [pending, setPending] = useState(false);
  // A sign-in refused away from this form (GitHub's round trip) comes back as `?error=`: say why, in fixed words.
  useEffect(() => setError(signInRefusalMessage(new URLSearchParams(window.location.search))), []);

  const submit = async () => {
    setPending(true);
    setError(null);
    try {
      const result = await signIn("credentials", { email, password, redirect: false });
      if (!result || result.error) {
        setError(result?.error === SIGN_IN_THROTTLED ? `Too many failed sign-ins. Try again ${inAWhile(Number(result.code))}.` : "Wrong email or password.");
        return;
      }
      // A page load, not a client-side move: what the signed-out tab held (its refused live
      // connection, queries answered 401) starts anew with the new session.
      window.location.assign(nextPath());
    } catch {
      setError("Could not reach the server. Try again.");
    } finally {
      setPending(false);
    }
  };

  return (
    <AuthFrame title="Sign in" subtitle="Use the account your administrator created, or the one the first start printed.">
      <form
        onSubmit={(event) => {
          event.preventDefault();
          void submit();
        }}
      >
        <Stack gap="md">
          {error && (
            <Alert color="red" role="alert" title="Not signed in">
              {error}
            </Alert>
          )}
          <TextInput
            label="Email"
            type="email"
            autoComplete="email"
            required
            value={email}
            onChange={(event) => setEmail(event.currentTarget.value)}
            autoFocus
          />
          <PasswordInput
            label="Password"
            autoComplete="current-password"
            required
            value={password}
            onChange={(event) => setPassword(event.currentTarget.value)}
          />
          <Button type="submit" loading={pending} fullWidth>
            Sign in
          </Button>
        </Stack>
      </form>
      {github && (
        <>
          <Divider label="or" labelPosition="center" />
          <Button variant="default" leftSection={<IconBrandGithub size={18} />} onClick={() => void signIn("github", { redirectTo: "/" })} fullWidth>
            Sign in with GitHub
          </Button>
        </>
      )}
      {signupOpen && (
        <Text fz="sm" c="dimmed" ta="center">
          New here?{" "}
          <Anchor component={Link} href="/signup" fz="sm">
            Create an account
          </Anchor>
        </Text>
      )}
    </AuthFrame>
  );
}
