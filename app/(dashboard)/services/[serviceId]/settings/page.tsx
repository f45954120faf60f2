import type { Metadata } from "next";
import { ServiceSettings } from "../../../../../components/services/service-settings";

export const metadata: Metadata = { title: "Settings" };

export default async function ServiceSettingsPage({ params }: { params: Promise<{ serviceId: string }> }) {
  const { serviceId } = await params;
  return <ServiceSettings serviceId={serviceId} />;
}
