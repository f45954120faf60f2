import type { Metadata } from "next";
import { ServiceShell } from "../../../../../components/terminal/service-shell";

export const metadata: Metadata = { title: "Shell" };

export default async function ServiceShellPage({ params }: { params: Promise<{ serviceId: string }> }) {
  const { serviceId } = await params;
  return <ServiceShell key={serviceId} serviceId={serviceId} />;
}
