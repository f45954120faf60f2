import type { Metadata } from "next";
import { OrganizationSettingsPage } from "../../../../components/organizations/organization-settings";

export const metadata: Metadata = { title: "Organization" };

export default function Page() {
  return <OrganizationSettingsPage />;
}
