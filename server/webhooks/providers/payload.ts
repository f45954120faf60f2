import { z } from "zod";
import type { PushEvent } from "./events";

/** Helpers the providers share to read a delivery's JSON payload. */

export class PayloadError extends Error {}

/** The value at `path`, read without validating anything else: undefined where the path breaks off. */
export function field(payload: unknown, ...path: string[]): unknown {
  let current = payload;
  for (const key of path) current = current && typeof current === "object" ? (current as Record<string, unknown>)[key] : undefined;
  return current;
}

/** The values that are non-empty strings, in order: a payload's repository URLs. */
export const urls = (...values: unknown[]) => values.filter((v): v is string => typeof v === "string" && v.length > 0);

/** What a deployment can pin (engine/protocol/snapshot.ts gitRef): 7 to 40 lowercase hex digits. */
export const commitHash = z
  .string()
  .regex(/^[0-9a-f]{7,40}$/i)
  .transform((value) => value.toLowerCase());

const ZERO = /^0+$/;

/** Whether a commit field is all zeros: the ref did not exist before, or does not after. */
export const isZeroCommit = (hash: string) => ZERO.test(hash);

/** The payload as `schema` reads it; a PayloadError naming the first mismatch otherwise. */
export function parse<T>(schema: z.ZodType<T>, payload: unknown, what: string): T {
  const parsed = schema.safeParse(payload);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new PayloadError(`${what} payload not understood: ${issue?.path.join(".") || "(root)"}: ${issue?.message}`);
  }
  return parsed.data;
}

/** The commit, lowercased, when it is a hash a deployment can pin; a PayloadError otherwise. */
export function checked(commit: string, what: string): string {
  const parsed = commitHash.safeParse(commit);
  if (!parsed.success) throw new PayloadError(`${what}: "${commit.slice(0, 80)}" is not a commit hash`);
  return parsed.data;
}

/** A push's previous commit, when it names one: all zeros means the ref is new. */
export function previousCommit(hash: string | undefined): string | null {
  const parsed = commitHash.safeParse(hash);
  return parsed.success && !isZeroCommit(parsed.data) ? parsed.data : null;
}

/** A full ref name as a branch or a tag; null for anything else (notes, merge-request refs). */
export function refOf(ref: string): PushEvent["ref"] | null {
  if (ref.startsWith("refs/heads/")) return { branch: ref.slice("refs/heads/".length) };
  if (ref.startsWith("refs/tags/")) return { tag: ref.slice("refs/tags/".length) };
  return null;
}

/** A commit as GitHub and GitLab list it in a push: the files it added, modified and removed. */
export const fileCommit = z
  .object({ added: z.array(z.string()).optional(), modified: z.array(z.string()).optional(), removed: z.array(z.string()).optional() })
  .passthrough();

/** Every file the commits touched, once. */
export function filesOf(commits: { added?: string[]; modified?: string[]; removed?: string[] }[]): string[] {
  return [...new Set(commits.flatMap((c) => [...(c.added ?? []), ...(c.modified ?? []), ...(c.removed ?? [])]))];
}
