import { z } from "zod";

/**
 * An integer input that may arrive as query-string text (REST GET and DELETE take their input
 * from the query): a JSON number, or a string of decimal digits. Nothing else becomes a number;
 * z.coerce.number() took "", " 7 ", "1e3", "0x10", true and [] as well (issue 13).
 */
export function integerParam({ min, max }: { min: number; max: number }) {
  return z
    .union([
      z.number(),
      z
        .string()
        .regex(/^-?\d{1,15}$/, "expected an integer")
        .transform(Number),
    ])
    .pipe(z.number().int().min(min).max(max));
}
