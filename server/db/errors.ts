import { AppError } from "../errors";

/** PostgreSQL's error code, whether drizzle wrapped the driver's error or not. */
export function pgCode(error: unknown): string | undefined {
  for (let current: unknown = error; current && typeof current === "object"; current = (current as { cause?: unknown }).cause) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}

/** Runs a write and turns a unique violation into a CONFLICT that names what already exists. */
export async function conflictOnDuplicate<T>(what: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (pgCode(error) === "23505") throw new AppError("CONFLICT", `${what} already exists`, { cause: error });
    throw error;
  }
}
