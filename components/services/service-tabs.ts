import type { ServiceKind } from "../../engine/protocol/snapshot";

/**
 * The tabs of a service's page (issue 15, item 6), each its own route under /services/<id>:
 * the Overview at the root, the others at /<segment>. A tab its kind has no use for is absent:
 * a JOB runs to completion, so it has no shell to open and no resource curves to chart.
 */
export const SERVICE_TABS = [
  { segment: "", label: "Overview" },
  { segment: "deployments", label: "Deployments" },
  { segment: "logs", label: "Logs" },
  { segment: "metrics", label: "Metrics", without: ["JOB"] },
  { segment: "shell", label: "Shell", without: ["JOB"] },
  { segment: "variables", label: "Variables" },
  { segment: "domains", label: "Domains", without: ["DATABASE", "JOB"] },
  { segment: "settings", label: "Settings" },
] as const satisfies readonly { segment: string; label: string; without?: readonly ServiceKind[] }[];

export type ServiceTab = (typeof SERVICE_TABS)[number];
export type ServiceTabSegment = ServiceTab["segment"];

export function serviceTabs(kind: ServiceKind): ServiceTab[] {
  return SERVICE_TABS.filter((tab) => !("without" in tab) || !(tab.without as readonly ServiceKind[]).includes(kind));
}

export function serviceTabHref(serviceId: string, segment: ServiceTabSegment): string {
  return segment === "" ? `/services/${serviceId}` : `/services/${serviceId}/${segment}`;
}

/** The tab a path shows: "" for the Overview, the first segment after the service's id otherwise (null: not a service path). */
export function serviceTabOf(pathname: string, serviceId: string): string | null {
  const base = `/services/${serviceId}`;
  if (pathname === base || pathname === `${base}/`) return "";
  if (!pathname.startsWith(`${base}/`)) return null;
  return pathname.slice(base.length + 1).split("/")[0]!;
}
