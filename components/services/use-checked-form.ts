import { useState, type ChangeEvent, type FormEvent } from "react";
import { fieldErrorsFor, type ApiErrorDetails } from "../errors";

/**
 * The state of a service form whose values are strings as typed: each field's error shows once
 * it was left or the form submitted (local checks first, then what the server said about it),
 * and submitting runs the checks before `onSubmit`.
 */
export function useCheckedForm<V extends Record<string, unknown>>(options: {
  initial: V;
  validate: (values: V) => Partial<Record<keyof V, string>>;
  failure: ApiErrorDetails | null;
  serverPaths: readonly (readonly [string, keyof V & string])[];
  readOnly: boolean;
  onSubmit: (values: V) => void;
}) {
  const [values, setValues] = useState(options.initial);
  const [submitted, setSubmitted] = useState(false);
  const [touched, setTouched] = useState<Partial<Record<keyof V, boolean>>>({});
  const local = options.validate(values);
  const server = fieldErrorsFor(options.failure, options.serverPaths);
  const errorOf = (field: keyof V & string) => ((submitted || touched[field]) && local[field]) || server.fields[field];
  const set = <F extends keyof V>(field: F, value: V[F]) => setValues((current) => ({ ...current, [field]: value }));
  /** The props of a text input or select bound to a string field. */
  const input = (field: keyof V & string) => ({
    value: values[field] as string,
    onChange: (event: ChangeEvent<HTMLInputElement | HTMLSelectElement>) => set(field, event.currentTarget.value as V[typeof field]),
    onBlur: () => setTouched((current) => ({ ...current, [field]: true })),
    error: errorOf(field),
    readOnly: options.readOnly,
  });
  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    setSubmitted(true);
    if (Object.keys(options.validate(values)).length === 0) options.onSubmit(values);
  };
  return { values, set, input, errorOf, onSubmit, unmatchedServerError: server.unmatched };
}
