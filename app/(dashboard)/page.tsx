import type { Metadata } from "next";
import { Suspense } from "react";
import { Overview } from "../../components/overview/overview";

export const metadata: Metadata = { title: "Overview" };

export default function OverviewPage() {
  // The overview reads its filters from the URL's query (useSearchParams), which needs a boundary.
  return (
    <Suspense>
      <Overview />
    </Suspense>
  );
}
