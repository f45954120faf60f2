"use client";

import { useMutation } from "@tanstack/react-query";
import { signOut } from "next-auth/react";
import { ConfirmModal } from "../confirm-delete";
import { useTRPC } from "../trpc";

/**
 * Ends every browser session of the signed-in account (server/auth/sign-out-everywhere.ts): for
 * a cookie left on a shared computer, or a device lost. This browser's session ends too, so it
 * then signs out here as well, which clears the cookie and goes to the sign-in page.
 */
export function SignOutEverywhereModal({ opened, onClose }: { opened: boolean; onClose: () => void }) {
  const trpc = useTRPC();
  const endSessions = useMutation(trpc.instance.signOutEverywhere.mutationOptions());
  return (
    <ConfirmModal
      opened={opened}
      onClose={onClose}
      title="Sign out everywhere"
      confirmLabel="Sign out everywhere"
      onConfirm={async () => {
        await endSessions.mutateAsync({});
        await signOut({ redirectTo: "/signin" });
      }}
    >
      Every session of your account ends: in every browser and on every device, this one included, with their live logs and shells. API tokens keep working. You
      sign in again afterwards.
    </ConfirmModal>
  );
}
