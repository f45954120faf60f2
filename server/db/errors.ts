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

/** What a request that needed the database is told while it cannot be reached. */
export const DATABASE_UNAVAILABLE_MESSAGE = "The database is unavailable (restarting or unreachable): try again in a few seconds";

/** The socket errors of a connection to the database that could not be opened, or was cut. */
const CONNECTION_ERRNOS = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN"]);
/** 57P01 admin shutdown (a fast or smart stop), 57P02 crash shutdown, 57P03 cannot connect now (starting, stopping, in recovery). */
const SERVER_GOING_AWAY = new Set(["57P01", "57P02", "57P03"]);
/**
 * node-postgres's own messages (they carry no code) for a connection that ended, that could not
 * be had in time (pg-pool's `connectionTimeoutMillis`: opening one, or waiting for one of a full
 * pool), or whose query was not answered in time (`query_timeout`: a server that vanished without
 * closing its connections).
 */
const DRIVER_MESSAGES = [
  /^Connection terminated/,
  /^timeout exceeded when trying to connect/,
  /^Client has encountered a connection error/,
  /^Query read timeout/,
];

/**
 * Whether a failure means the database could not be reached (stopped, restarting, failing over,
 * the network between), rather than that the query was wrong: such a request deserves a 503 the
 * client can retry, not an internal error. A domain's AppError is checked first by its callers.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let current: unknown = error; current && typeof current === "object"; current = (current as { cause?: unknown }).cause) {
    const { code, message } = current as { code?: unknown; message?: unknown };
    if (typeof code === "string" && (CONNECTION_ERRNOS.has(code) || code.startsWith("08") || SERVER_GOING_AWAY.has(code))) return true;
    if (typeof message === "string" && DRIVER_MESSAGES.some((pattern) => pattern.test(message))) return true;
  }
  return false;
}
