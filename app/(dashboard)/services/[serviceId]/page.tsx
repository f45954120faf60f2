import type { Metadata } from "next";
import { ServiceOverview } from "../../../../components/services/service-overview";

export const metadata: Metadata = { title: "Service" };

export default async function ServiceOverviewPage({ params }: { params: Promise<{ serviceId: string }> }) {
  const { serviceId } = await params;
  return <ServiceOverview serviceId={serviceId} />;
}
