import type { Metadata } from "next";
import { ServiceDomains } from "../../../../../components/services/service-domains";

export const metadata: Metadata = { title: "Domains" };

export default async function ServiceDomainsPage({ params }: { params: Promise<{ serviceId: string }> }) {
  const { serviceId } = await params;
  return <ServiceDomains serviceId={serviceId} />;
}
