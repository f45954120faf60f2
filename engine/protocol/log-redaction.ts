/**
 * What every Slipway logger redacts, the control plane's (server/logger.ts) and the engine's and
 * its router's (engine/logger.ts): a second line of defence, since tokens, secrets and terminal
 * contents are never passed to a logger in the first place. In the protocol folder because both
 * sides use it, as the backoff policy is. Paths are pino's (https://getpino.io/#/docs/redaction).
 */
export const LOG_REDACTION = {
  paths: [
    "token",
    "*.token",
    "password",
    "*.password",
    "secret",
    "*.secret",
    "*.value",
    "authorization",
    "cookie",
    "headers.authorization",
    "headers.cookie",
    "*.headers.authorization",
    "*.headers.cookie",
  ],
  censor: "[redacted]",
};
