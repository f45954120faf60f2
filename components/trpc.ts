"use client";

import { createTRPCContext } from "@trpc/tanstack-react-query";
import type { AppRouter } from "../server/api/root";

/** The dashboard's typed API: `const trpc = useTRPC(); useQuery(trpc.projects.list.queryOptions({}))`. */
export const { TRPCProvider, useTRPC, useTRPCClient } = createTRPCContext<AppRouter>();
