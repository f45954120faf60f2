import type { Metadata } from "next";
import { DeploymentView } from "../../../../components/deployments/deployment-view";

export const metadata: Metadata = { title: "Deployment" };

export default async function DeploymentPage({ params }: { params: Promise<{ deploymentId: string }> }) {
  const { deploymentId } = await params;
  // Keyed: another deployment starts with fresh events and logs, not the previous one's.
  return <DeploymentView key={deploymentId} deploymentId={deploymentId} />;
}
