"use client";

import { Button } from "@mantine/core";
import { signOut } from "next-auth/react";
import { AuthFrame } from "../signin/auth-frame";
import { CreateOrganizationForm } from "./create-organization";
import { chooseOrganization } from "./organization-cookie";

/** A signed-in newcomer who belongs to no organization: they create one, or open an invitation they were sent. */
export function NoOrganization({ email }: { email: string }) {
  return (
    <AuthFrame
      title="Create your organization"
      subtitle={`Signed in as ${email}. You belong to no organization yet: create one, or open the invitation link a member sent you.`}
    >
      <CreateOrganizationForm
        onCreated={(organizationId) => {
          chooseOrganization(organizationId);
          window.location.assign("/");
        }}
      />
      <Button variant="subtle" color="gray" onClick={() => void signOut({ redirectTo: "/signin" })}>
        Sign out
      </Button>
    </AuthFrame>
  );
}
