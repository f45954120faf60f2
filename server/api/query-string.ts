import { TRPCError } from "@trpc/server";

/**
 * The query string's pairs as URLSearchParams reads them (application/x-www-form-urlencoded:
 * `+` is a space, a `%` without two hex digits stays as it is), except that percent-encoded
 * bytes that are not UTF-8 (`%FF`, a lone surrogate's `%ED%A0%80`) are refused with a
 * BAD_REQUEST naming the parameter, as in path parameters and JSON bodies, rather than read as
 * U+FFFD: a value that was not sent. REST reads its inputs from these pairs; tRPC reads its own
 * (`input`, `batch`) with URLSearchParams, after this check passed (server/api/http.ts).
 */
export function strictSearchParams(search: string): [string, string][] {
  const pairs: [string, string][] = [];
  for (const part of search.replace(/^\?/, "").split("&")) {
    if (part === "") continue;
    const equals = part.indexOf("=");
    const [rawKey, rawValue] = equals === -1 ? [part, ""] : [part.slice(0, equals), part.slice(equals + 1)];
    const key = formDecode(rawKey, `${rawKey}: the query parameter's name is not valid percent-encoded UTF-8`);
    pairs.push([key, formDecode(rawValue, `${key}: the query parameter is not valid percent-encoded UTF-8`)]);
  }
  return pairs;
}

/** decodeURIComponent refuses what is not UTF-8; it is given only runs of well-formed `%XX`. */
function formDecode(text: string, refusal: string): string {
  try {
    return text.replace(/\+/g, " ").replace(/(?:%[0-9a-fA-F]{2})+/g, (run) => decodeURIComponent(run));
  } catch {
    throw new TRPCError({ code: "BAD_REQUEST", message: refusal });
  }
}
