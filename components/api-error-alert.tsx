import { Alert, type AlertProps } from "@mantine/core";
import { apiError } from "./errors";

/** What the API said when a query or an action failed, as an alert; nothing while it has not failed. */
export function ApiErrorAlert({ error, ...props }: { error: unknown } & Omit<AlertProps, "children">) {
  if (!error) return null;
  return (
    <Alert color="red" role="alert" {...props}>
      {apiError(error).message}
    </Alert>
  );
}
