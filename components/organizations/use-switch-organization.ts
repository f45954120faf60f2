"use client";

import { useQueryClient } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import { chooseOrganization } from "./organization-cookie";

/** Enters another organization (null: the server's first choice). Pages show ids of the previous one, so start over from the overview with fresh data. */
export function useSwitchOrganization(): (organizationId: string | null) => Promise<void> {
  const queryClient = useQueryClient();
  const router = useRouter();
  return async (organizationId) => {
    chooseOrganization(organizationId);
    router.push("/");
    await queryClient.resetQueries();
  };
}
