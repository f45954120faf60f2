import type { Metadata } from "next";
import { ServiceView } from "../../../../components/services/service-view";

export const metadata: Metadata = { title: "Service" };

export default async function ServicePage({ params }: { params: Promise<{ serviceId: string }> }) {
  const { serviceId } = await params;
  return <ServiceView serviceId={serviceId} />;
}
