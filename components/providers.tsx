"use client";

import { MantineProvider } from "@mantine/core";
import { ModalsProvider } from "@mantine/modals";
import { Notifications } from "@mantine/notifications";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { createTRPCClient, httpBatchLink, TRPCClientError } from "@trpc/client";
import { useState, type ReactNode } from "react";
import { MAX_BATCH_CALLS } from "../server/api/batch-limit";
import type { AppRouter } from "../server/api/root";
import { RealtimeProvider } from "./realtime";
import { cssVariablesResolver, theme } from "./theme";
import { TRPCProvider } from "./trpc";

/** Errors a retry cannot fix: the answer will be the same. */
function isFinal(error: unknown): boolean {
  const status = error instanceof TRPCClientError ? (error.data as { httpStatus?: number } | undefined)?.httpStatus : undefined;
  return status !== undefined && status >= 400 && status < 500;
}

function makeQueryClient() {
  return new QueryClient({
    defaultOptions: {
      queries: { staleTime: 5_000, retry: (count, error) => !isFinal(error) && count < 3 },
    },
  });
}

/** Everything a dashboard page needs around it: UI kit, data fetching, the API client, realtime. */
export function Providers({ children }: { children: ReactNode }) {
  const [queryClient] = useState(makeQueryClient);
  const [trpcClient] = useState(() => createTRPCClient<AppRouter>({ links: [httpBatchLink({ url: "/api/trpc", maxItems: MAX_BATCH_CALLS })] }));
  return (
    <MantineProvider theme={theme} cssVariablesResolver={cssVariablesResolver} defaultColorScheme="auto">
      <QueryClientProvider client={queryClient}>
        <TRPCProvider trpcClient={trpcClient} queryClient={queryClient}>
          <RealtimeProvider>
            <ModalsProvider>
              <Notifications position="bottom-right" />
              {children}
            </ModalsProvider>
          </RealtimeProvider>
        </TRPCProvider>
      </QueryClientProvider>
    </MantineProvider>
  );
}
