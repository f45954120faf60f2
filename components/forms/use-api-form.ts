import { useForm, type FormErrors } from "@mantine/form";
import { useEffect, useRef, useState } from "react";
import type { z } from "zod";
import { fieldErrorsFor, type ApiErrorDetails } from "../errors";

/** Input paths (as the schema's and the server's issues name them: `config.git.url`) to the form's fields. */
export type FieldPaths<F extends string> = readonly (readonly [string, F])[];

/**
 * Words for the issues a schema leaves to zod's defaults ("Too small: expected string to have
 * >=1 characters"); the schemas' own messages ("use lowercase letters…") win over these.
 */
function phrase(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case "too_small":
      if (issue.origin === "string") return issue.minimum === 1 ? "Required" : `At least ${issue.minimum} characters`;
      if (issue.origin === "array") return issue.minimum === 1 ? "Choose at least one" : `Choose at least ${issue.minimum}`;
      return `At least ${issue.minimum}`;
    case "too_big":
      return issue.origin === "string" ? `At most ${issue.maximum} characters` : `At most ${issue.maximum}`;
    case "invalid_type":
      return issue.expected === "number" || issue.expected === "int" ? "Enter a whole number" : "Required";
    default:
      return undefined;
  }
}

/** The protocol's messages start in lowercase, to follow a field's name; alone under a field they start a sentence. */
function sentence(message: string): string {
  return message.charAt(0).toUpperCase() + message.slice(1);
}

/**
 * A @mantine/form validator from the API's own zod schema, so each rule exists once: the form's
 * values become the API's input (`toInput`), the schema checks it, and each issue lands on the
 * field its path maps to. Mantine's `schemaResolver` reads standard schemas too, but cannot pass
 * zod the words above for its default messages, which this needs.
 */
export function apiSchemaResolver<V, F extends string>(schema: z.ZodType, toInput: (values: V) => unknown, paths: FieldPaths<F>) {
  return (values: V): FormErrors => {
    const parsed = schema.safeParse(toInput(values), { error: phrase });
    if (parsed.success) return {};
    const fields: Record<string, string> = {};
    for (const issue of parsed.error.issues) fields[issue.path.join(".")] ??= sentence(issue.message);
    return fieldErrorsFor({ message: "", fields }, paths).fields;
  };
}

/**
 * A form whose rules are the API's schema: errors show once a field is left or the form
 * submitted, what the server said about a field lands on it, and every error of a field, or the
 * server's message about the whole form, clears as soon as the input changes (a stale error is
 * worse than none).
 */
export function useApiForm<V extends Record<string, unknown>, F extends keyof V & string>(options: {
  initialValues: V;
  /** apiSchemaResolver of the API's schema (with, for a job, the schedule read as the engine reads it). */
  validate: (values: V) => FormErrors;
  /** Where the server's issues go, by input path. */
  paths: FieldPaths<F>;
  failure: ApiErrorDetails | null;
  readOnly?: boolean;
}) {
  const failure = useRef(options.failure);
  failure.current = options.failure;
  const [dismissed, setDismissed] = useState<ApiErrorDetails | null>(null);
  const form = useForm<V>({
    mode: "controlled",
    initialValues: options.initialValues,
    validate: options.validate,
    validateInputOnBlur: true,
    onValuesChange: () => setDismissed(failure.current),
  });
  const server = fieldErrorsFor(options.failure, options.paths);
  const { setErrors } = form;
  useEffect(() => {
    // Once per answer of the server (its fields derive from it): typing then clears them field by field.
    if (options.failure) setErrors(server.fields);
  }, [options.failure, setErrors]);
  /** The props of an input bound to a field, read-only where the viewer may not edit. */
  const input = (field: F, inputOptions?: { type?: "input" | "checkbox" }) => ({ ...form.getInputProps(field, inputOptions), readOnly: options.readOnly });
  return {
    form,
    input,
    /** The server refused the form for a reason no field shows, and nothing was changed since. */
    unmatchedServerError: server.unmatched && options.failure !== dismissed,
  };
}
