import { branchProblem, gitUrlProblem, repositoryPathProblem } from "../engine/protocol/git-source";

/**
 * The server's input rules, repeated in the forms so a mistake shows before the round trip
 * (engine/protocol/snapshot.ts and server/variables/variables.ts are the authority; the server
 * checks again); the git rules are the protocol's own (engine/protocol/git-source.ts). Each
 * returns an error message, or null when the value is fine.
 */

export function dnsLabelError(value: string): string | null {
  if (value.length === 0) return "Required";
  if (value.length > 40) return "At most 40 characters";
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(value)) return "Use lowercase letters, digits and inner hyphens";
  return null;
}

export function gitUrlError(value: string): string | null {
  if (value.length === 0) return "Required";
  return sentence(gitUrlProblem(value));
}

export function branchError(value: string): string | null {
  if (value.length === 0) return "Required";
  return sentence(branchProblem(value));
}

export function commitError(value: string): string | null {
  return /^[0-9a-f]{7,40}$/.test(value) ? null : "Expected a commit hash (7 to 40 hex digits)";
}

export function rootDirectoryError(value: string): string | null {
  return sentence(repositoryPathProblem(value));
}

/** The protocol's messages start in lowercase, to follow a field's name; alone under a field they start a sentence. */
function sentence(message: string | null): string | null {
  return message && message.charAt(0).toUpperCase() + message.slice(1);
}

export function portError(value: string): string | null {
  if (value === "") return null;
  const port = Number(value);
  return Number.isInteger(port) && port >= 1 && port <= 65535 ? null : "A port between 1 and 65535";
}

export function healthCheckPathError(value: string): string | null {
  return value === "" || value.startsWith("/") ? null : "Must start with /";
}

export function variableKeyError(value: string): string | null {
  if (value.length === 0) return "Required";
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(value)) return "Use letters, digits and underscores, not starting with a digit";
  if (value.toUpperCase().startsWith("SLIPWAY_")) return "SLIPWAY_ variables are built in and cannot be set";
  return null;
}

/** A whole number within [min, max], for the numeric settings typed into text boxes. */
export function integerError(value: string, min: number, max: number): string | null {
  if (value === "") return "Required";
  const number = Number(value);
  return Number.isInteger(number) && number >= min && number <= max ? null : `A whole number from ${min} to ${max}`;
}

/** The IANA time zones this browser knows, UTC first (Intl lists only the geographic ones). */
export function timeZones(): string[] {
  return ["UTC", ...Intl.supportedValuesOf("timeZone").filter((zone) => zone !== "UTC")];
}
