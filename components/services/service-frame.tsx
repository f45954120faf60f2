"use client";

import { Alert, Tabs } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import Link from "next/link";
import { usePathname } from "next/navigation";
import type { ReactNode } from "react";
import { DeploymentActions } from "../deployments/deployment-actions";
import { useServiceDeployments } from "../deployments/service-deployments";
import { ModeBadge } from "../environments/mode-badge";
import { PageState } from "../not-found";
import { findService, useOverview } from "../overview/use-overview";
import { environmentCrumbs, PageHeader } from "../page-header";
import { StatusBadge } from "../status-badge";
import { useTRPC } from "../trpc";
import { serviceTabHref, serviceTabOf, serviceTabs } from "./service-tabs";

/** Mantine Tabs want a non-empty value: the Overview's segment is empty. */
const valueOf = (segment: string) => segment || "overview";

/**
 * What every tab of a service's page shares (the route layout of /services/<id>): the header
 * with the service's status and its Deploy, Restart and Stop buttons, and the tab bar. The tabs
 * are links, one URL each, so a tab can be bookmarked, shared and reached with Back; the active
 * one is read from the URL. Arrow keys move between tabs, Enter follows one.
 */
export function ServiceFrame({ serviceId, children }: { serviceId: string; children: ReactNode }) {
  const trpc = useTRPC();
  const pathname = usePathname();
  const service = useQuery(trpc.services.get.queryOptions({ serviceId }));
  const overview = useOverview();
  const found = findService(overview.data, serviceId);
  const environmentId = service.data?.environmentId ?? "";
  const { deployedBefore } = useServiceDeployments(serviceId, environmentId);

  if (!service.data || !found)
    return <PageState loading={service.isLoading || overview.isLoading} error={service.error ?? overview.error} missing what="service" />;
  const current = service.data;
  const { project, environment } = found;
  const tabs = serviceTabs(current.kind);
  const active = serviceTabOf(pathname, serviceId) ?? "";
  const known = tabs.some((tab) => tab.segment === active);

  return (
    <>
      <PageHeader
        title={current.name}
        crumbs={[...environmentCrumbs({ project, environment }), { label: current.name }]}
        badges={
          <>
            <ModeBadge mode={environment.mode} />
            <StatusBadge status={found.service.status} />
          </>
        }
        actions={
          <DeploymentActions environmentId={current.environmentId} serviceIds={[current.id]} targetName={current.name} deployedBefore={deployedBefore} />
        }
      />
      <Tabs value={valueOf(active)} activateTabWithKeyboard={false}>
        <Tabs.List aria-label={`Sections of ${current.name}`} mb="lg" style={{ flexWrap: "nowrap", overflowX: "auto", overflowY: "hidden" }}>
          {tabs.map((tab) => (
            <Tabs.Tab
              key={tab.segment}
              value={valueOf(tab.segment)}
              // A link, not a button: the tab is a page (middle-click, copy link, Back).
              renderRoot={({ type: _button, ...props }: Record<string, unknown>) => (
                <Link {...props} href={serviceTabHref(serviceId, tab.segment)} aria-current={tab.segment === active ? "page" : undefined} />
              )}
            >
              {tab.label}
            </Tabs.Tab>
          ))}
        </Tabs.List>
        <Tabs.Panel value={valueOf(active)}>
          {known ? (
            children
          ) : (
            <Alert color="gray" title="Not for this kind of service">
              A {current.kind.toLowerCase()} service has no such tab.
            </Alert>
          )}
        </Tabs.Panel>
      </Tabs>
    </>
  );
}
