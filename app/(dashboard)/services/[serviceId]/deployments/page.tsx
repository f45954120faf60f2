import type { Metadata } from "next";
import { ServiceDeploymentsTab } from "../../../../../components/services/service-deployments-tab";

export const metadata: Metadata = { title: "Deployments" };

export default async function ServiceDeploymentsPage({ params }: { params: Promise<{ serviceId: string }> }) {
  const { serviceId } = await params;
  return <ServiceDeploymentsTab serviceId={serviceId} />;
}
