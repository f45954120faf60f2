import { Alert, Button, Group } from "@mantine/core";
import type { ReactNode } from "react";

/**
 * The end of a dialog's form: what the server said about the form as a whole (an error that no
 * field shows), then Cancel and the submit button, as every dialog of the console ends.
 */
export function DialogFormFooter({
  error,
  errorTitle,
  onCancel,
  submit,
  pending,
  disabled,
}: {
  /** Shown above the buttons when set: the server's message that belongs to no field. */
  error?: ReactNode;
  errorTitle?: string;
  onCancel: () => void;
  /** The submit button's label, saying what it does ("Create project"). */
  submit: ReactNode;
  pending: boolean;
  disabled?: boolean;
}) {
  return (
    <>
      {error ? (
        <Alert color="red" role="alert" title={errorTitle}>
          {error}
        </Alert>
      ) : null}
      <Group justify="flex-end">
        <Button variant="default" onClick={onCancel}>
          Cancel
        </Button>
        <Button type="submit" loading={pending} disabled={disabled}>
          {submit}
        </Button>
      </Group>
    </>
  );
}
