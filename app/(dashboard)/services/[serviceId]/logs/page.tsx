import type { Metadata } from "next";
import { ServiceLogs } from "../../../../../components/logs/service-logs";

export const metadata: Metadata = { title: "Logs" };

export default async function ServiceLogsPage({ params }: { params: Promise<{ serviceId: string }> }) {
  const { serviceId } = await params;
  return <ServiceLogs key={serviceId} serviceId={serviceId} />;
}
