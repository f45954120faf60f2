"use client";

import { Alert, Button, Group, Modal, Stack, Text, TextInput } from "@mantine/core";
import { useState, type ReactNode } from "react";
import { apiError } from "./errors";

/**
 * A destructive action's confirmation: says exactly what goes, and asks for the name typed out
 * when `typeToConfirm` is given (projects, environments, services), so a slip cannot delete.
 */
export function ConfirmModal({
  opened,
  onClose,
  title,
  children,
  typeToConfirm,
  confirmLabel,
  onConfirm,
  color = "red",
}: {
  opened: boolean;
  onClose: () => void;
  title: string;
  children: ReactNode;
  typeToConfirm?: string;
  confirmLabel: string;
  onConfirm: () => Promise<unknown>;
  color?: string;
}) {
  const [typed, setTyped] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [pending, setPending] = useState(false);
  const close = () => {
    setTyped("");
    setError(null);
    onClose();
  };
  const confirm = async () => {
    setPending(true);
    setError(null);
    try {
      await onConfirm();
      setTyped("");
      onClose();
    } catch (failure) {
      setError(apiError(failure).message);
    } finally {
      setPending(false);
    }
  };
  const ready = !typeToConfirm || typed === typeToConfirm;
  return (
    <Modal opened={opened} onClose={close} title={title} centered>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if (ready) void confirm();
        }}
      >
        <Stack gap="md">
          <Text fz="sm" component="div">
            {children}
          </Text>
          {typeToConfirm && (
            <TextInput
              label={
                <>
                  Type <strong>{typeToConfirm}</strong> to confirm
                </>
              }
              value={typed}
              onChange={(event) => setTyped(event.currentTarget.value)}
              autoComplete="off"
              data-autofocus
            />
          )}
          {error && (
            <Alert color="red" title="Not done" role="alert">
              {error}
            </Alert>
          )}
          <Group justify="flex-end">
            <Button variant="default" onClick={close}>
              Cancel
            </Button>
            <Button type="submit" color={color} disabled={!ready} loading={pending}>
              {confirmLabel}
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
