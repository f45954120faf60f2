"use client";

import { Alert, Text } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import dynamic from "next/dynamic";
import { useCan, useRole } from "../auth/can";
import { PageState } from "../not-found";
import { findService, useOverview } from "../overview/use-overview";
import { environmentCrumbs, PageHeader } from "../page-header";
import { StatusBadge } from "../status-badge";
import { useTRPC } from "../trpc";

// xterm.js touches the DOM when it loads: only in the browser.
const TerminalSession = dynamic(() => import("./terminal-session").then((module) => module.TerminalSession), { ssr: false });

/** A shell in the service's running release, for members with the DEVELOPER role or higher. */
export function ServiceShell({ serviceId }: { serviceId: string }) {
  const trpc = useTRPC();
  const query = useQuery(trpc.services.get.queryOptions({ serviceId }));
  const overview = useOverview();
  const place = findService(overview.data, serviceId);
  const role = useRole();
  const allowed = useCan("DEVELOPER");
  const service = query.data;
  if (!service) return <PageState loading={query.isPending} error={query.error} missing={!query.isPending && !query.error} what="service" />;

  return (
    <>
      <PageHeader
        title={`Shell of ${service.name}`}
        crumbs={[...environmentCrumbs(place), { label: service.name, href: `/services/${service.id}` }, { label: "Shell" }]}
        badges={place ? <StatusBadge status={place.service.status} size="md" /> : undefined}
        description={
          <Text span size="sm" c="dimmed">
            A shell in the running release&apos;s directory, with the service&apos;s variables. Sessions are audited (who, when, how long), never their
            contents.
          </Text>
        }
      />
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
