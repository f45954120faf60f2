import type { Metadata } from "next";
import { NotificationsPage } from "../../../../../components/notifications/notifications-page";

export const metadata: Metadata = { title: "Notifications" };

export default async function Page({ params }: { params: Promise<{ projectId: string }> }) {
  const { projectId } = await params;
  return <NotificationsPage projectId={projectId} />;
}
