/**
 * The one error type domain code throws. Transports (tRPC, REST, socket acks, CLI exit codes)
 * map these codes in one adapter each; anything else is an INTERNAL error whose cause is logged.
 */
export const appErrorCodes = ["NOT_FOUND", "FORBIDDEN", "UNAUTHORIZED", "CONFLICT", "INVALID", "UNAVAILABLE"] as const;
export type AppErrorCode = (typeof appErrorCodes)[number];

export class AppError extends Error {
  readonly code: AppErrorCode;

  constructor(code: AppErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "AppError";
    this.code = code;
  }
}

export function isAppError(error: unknown): error is AppError {
  return error instanceof AppError;
}

/** A lookup that found nothing in the caller's organization: same answer as "does not exist". */
export function notFound(what: string): AppError {
  return new AppError("NOT_FOUND", `${what} not found`);
}
