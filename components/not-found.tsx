"use client";

import { Alert, Anchor, Center, Loader } from "@mantine/core";
import Link from "next/link";
import { apiError } from "./errors";

/** What a page shows while its data loads, when it failed, or when the thing is not there (deleted, other organization). */
export function PageState({ loading, error, missing, what }: { loading: boolean; error: unknown; missing: boolean; what: string }) {
  if (loading)
    return (
      <Center py="xl">
        <Loader role="status" aria-label={`Loading ${what}`} />
      </Center>
    );
  if (error)
    return (
      <Alert color="red" role="alert" title={`Could not load the ${what}`}>
        {apiError(error).message}
      </Alert>
    );
  if (missing)
    return (
      <Alert color="yellow" title={`This ${what} does not exist`}>
        It may have been deleted, or it belongs to another organization.{" "}
        <Anchor component={Link} href="/">
          Back to the overview
        </Anchor>
      </Alert>
    );
  return null;
}
