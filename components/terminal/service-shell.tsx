"use client";

import { Alert, Text } from "@mantine/core";
import dynamic from "next/dynamic";
import { useCan, useRole } from "../auth/can";

// xterm.js touches the DOM when it loads: only in the browser.
const TerminalSession = dynamic(() => import("./terminal-session").then((module) => module.TerminalSession), { ssr: false });

/** The Shell tab of a service: a shell in its running release, for members with the DEVELOPER role or higher. */
export function ServiceShell({ serviceId }: { serviceId: string }) {
  const role = useRole();
  const allowed = useCan("DEVELOPER");

  return (
    <>
      <Text size="sm" c="dimmed" mb="sm">
        A shell in the running release&apos;s directory, with the service&apos;s variables. Sessions are audited (who, when, how long), never their contents.
      </Text>
      {role === undefined ? null : allowed ? (
        <TerminalSession serviceId={serviceId} />
      ) : (
        <Alert color="yellow" title="Shells need the DEVELOPER role">
          Ask an administrator of your organization for the DEVELOPER role to open a shell.
        </Alert>
      )}
    </>
  );
}
