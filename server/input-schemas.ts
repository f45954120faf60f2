import { z } from "zod";

/**
 * Schemas of input values whose text takes more care than zod's defaults: what the API accepts
 * must be what PostgreSQL stores, and nothing it cannot store (issue 13).
 */

/**
 * An integer input that may arrive as query-string text (REST GET and DELETE take their input
 * from the query): a JSON number, or a string of decimal digits. Nothing else becomes a number;
 * z.coerce.number() took "", " 7 ", "1e3", "0x10", true and [] as well.
 */
export function integerParam({ min, max }: { min: number; max: number }) {
  const integer = z.number().int().min(min).max(max);
  const digits = z
    .string()
    // Up to 16 digits: log and event sequence numbers reach 2^53 (the integer's max refuses what is past it).
    .regex(/^-?\d{1,16}$/, "expected an integer")
    .transform(Number);
  // A pipe, so that trpc-to-openapi takes it as a query parameter; the OpenAPI document shows the union.
  return z.union([integer, digits]).pipe(integer);
}

/**
 * An ISO 8601 instant in UTC (`2026-05-01T12:00:00Z`). The format allows the year 0000, which
 * PostgreSQL has not (its calendar goes from 1 BC to AD 1): refused here rather than by the query.
 */
export const timestamp = z
  .string()
  .datetime()
  .refine((text) => !text.startsWith("0000-"), "the year must be 0001 or later");

/**
 * A variable's name: what a process environment takes, minus the built-in `SLIPWAY_` ones. The
 * API and the dashboard's forms both validate with it (the forms through @mantine/form's
 * schema resolver), so the rule exists once.
 */
export const variableKey = z
  .string()
  .min(1, "enter a key")
  .max(255)
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "use letters, digits and underscores, not starting with a digit")
  .refine((key) => !key.toUpperCase().startsWith("SLIPWAY_"), "SLIPWAY_ variables are built in and cannot be set");

/** A variable's value: 64 KiB at most, as the engine hands values to processes whole. */
export const variableValue = z.string().max(64 * 1024);

/** A custom domain (issue 16): a public DNS name, lowercase, without a trailing dot; no wildcard, scheme, port or path. */
export const customDomainName = z
  .string()
  .trim()
  .toLowerCase()
  .transform((value) => value.replace(/\.$/, ""))
  .pipe(
    z
      .string()
      .max(253)
      .regex(
        /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/,
        "give a domain name such as www.example.com (no scheme, port or path)",
      )
      .refine((value) => !/(^|\.)localhost$/.test(value), "localhost names are Slipway's generated domains, not custom ones"),
  );

/** An environment's default of sleep when idle (issue 16): minutes without a request, 1 to 30 days' worth; null (elsewhere) is never. */
export const environmentSleepAfterMinutes = z.number().int().min(1).max(43_200);
