import { z } from "zod";

/**
 * A number read from an environment variable, then checked by `schema`: decimal digits, with a
 * fraction where the schema allows one, and nothing else. `z.coerce.number()` read "" and " " as
 * 0 (`PORT=` listened on a random port, `SLIPWAY_ROUTER_HTTPS_PORT=" "` turned HTTPS off) and
 * "1e2" as 100: a variable set by mistake is refused, saying so, rather than read as another value.
 */
export function envNumber<T extends z.ZodType<number, number>>(schema: T, notANumber = "expected a number written with digits, such as 30 or 2.5") {
  return z
    .string()
    .trim()
    .regex(/^\d+(\.\d+)?$/, notANumber)
    .transform(Number)
    .pipe(schema);
}
