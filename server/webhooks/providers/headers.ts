/** A request's headers as node:http gives them: lowercase names, repeated ones as arrays. */
export type Headers = Record<string, string | string[] | undefined>;

/** The header's first value exactly as sent: what a signature is compared against. */
export function rawHeader(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The header's first value, trimmed; undefined when it is missing or blank. */
export function header(headers: Headers, name: string): string | undefined {
  return rawHeader(headers, name)?.trim() || undefined;
}

/** Headers never stored with a delivery: the GitLab token is the secret itself. */
const secretHeaders = new Set(["x-gitlab-token", "authorization", "proxy-authorization", "cookie"]);

// eslint-disable-next-line no-control-regex -- control characters are what it finds
const CONTROL_CHARACTERS = /[\u0000-\u001f]/g;

/** The request's headers as stored: lowercase names, secrets removed, values bounded. */
export function storableHeaders(headers: Headers): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || secretHeaders.has(name)) continue;
    // Control characters cannot be stored in jsonb text (\u0000) and never belong in a header.
    kept[name] = (Array.isArray(value) ? value.join(", ") : value).replace(CONTROL_CHARACTERS, "").slice(0, 1024);
  }
  return kept;
}
