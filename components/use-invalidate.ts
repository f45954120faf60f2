"use client";

import { useQueryClient } from "@tanstack/react-query";
import { useCallback } from "react";

/**
 * After a mutation, refetch what is on screen. Views here are small and cheap to re-read, and one
 * change (a new service) shows in several of them (overview, environment, counts), so the
 * dashboard invalidates every active query rather than tracking which ones a change touches.
 */
export function useInvalidate(): () => Promise<void> {
  const queryClient = useQueryClient();
  return useCallback(() => queryClient.invalidateQueries(), [queryClient]);
}
