import type { Metadata } from "next";
import { ServiceVariables } from "../../../../../components/services/service-variables";

export const metadata: Metadata = { title: "Variables" };

export default async function ServiceVariablesPage({ params }: { params: Promise<{ serviceId: string }> }) {
  const { serviceId } = await params;
  return <ServiceVariables serviceId={serviceId} />;
}
