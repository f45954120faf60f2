"use client";

import { PasswordInput, TextInput } from "@mantine/core";

export type AccountDraft = { name: string; email: string; password: string };

/** The fields of a new account, as sign-up and an invitation for a newcomer ask them. */
export function AccountFields({
  value,
  onChange,
  errors,
  autoFocus,
}: {
  value: AccountDraft;
  onChange: (next: AccountDraft) => void;
  errors: Partial<Record<keyof AccountDraft, string | null | undefined>>;
  autoFocus?: boolean;
}) {
  const set = (field: keyof AccountDraft) => (event: React.ChangeEvent<HTMLInputElement>) => onChange({ ...value, [field]: event.currentTarget.value });
  return (
    <>
      <TextInput
        label="Your name"
        autoComplete="name"
        value={value.name}
        onChange={set("name")}
        error={errors.name}
        maxLength={100}
        required
        autoFocus={autoFocus}
      />
      <TextInput label="Email" type="email" autoComplete="email" value={value.email} onChange={set("email")} error={errors.email} required />
      <PasswordInput
        label="Password"
        description="At least 10 characters."
        autoComplete="new-password"
        value={value.password}
        onChange={set("password")}
        error={errors.password}
        required
      />
    </>
  );
}
