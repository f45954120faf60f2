import type { Metadata } from "next";
import { GitPage } from "../../../../components/git/git-page";

export const metadata: Metadata = { title: "Git" };

export default function Page() {
  return <GitPage />;
}
