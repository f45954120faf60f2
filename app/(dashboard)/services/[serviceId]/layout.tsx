import type { ReactNode } from "react";
import { ServiceFrame } from "../../../../components/services/service-frame";

/** The header and the tab bar every tab of a service shares; each tab is a route below (issue 15, item 6). */
export default async function ServiceLayout({ params, children }: { params: Promise<{ serviceId: string }>; children: ReactNode }) {
  const { serviceId } = await params;
  return <ServiceFrame serviceId={serviceId}>{children}</ServiceFrame>;
}
