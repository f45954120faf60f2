import type { Metadata } from "next";
import { ServiceMetrics } from "../../../../../components/metrics/service-metrics";

export const metadata: Metadata = { title: "Metrics" };

export default async function ServiceMetricsPage({ params }: { params: Promise<{ serviceId: string }> }) {
  const { serviceId } = await params;
  return <ServiceMetrics serviceId={serviceId} />;
}
