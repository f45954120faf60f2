import { ZodRealError } from "zod";
import {
  credentialScope,
  credentialsProblem,
  isDeployKey,
  mapCredentials,
  parseGitUrl,
  sshKeyProblem,
  type GitCredentials,
  type GitSource,
} from "../../engine/protocol";
import type { OrganizationCipher } from "../secrets/keyring";

/**
 * A repository's credentials (`https://user:token@host/…`, or `git.credentials`: a token, or an
 * ssh deploy key) are a secret, as registry passwords are (registry-credentials.ts): taken out of
 * the URL when a service is saved, stored sealed with the organization's key inside the
 * service's config, shown as "[secret]", redacted in the audit log, and opened only to check the
 * repository when it is saved (server/git/check-repository.ts) and to render a deployment's
 * snapshot (which seals them again for the engine). The URL is stored, shown and logged without them.
 */
const CONTEXT = "git-credentials";
export const HIDDEN_CREDENTIALS: GitCredentials = { username: "[secret]", password: "[secret]" };
export const HIDDEN_DEPLOY_KEY: GitCredentials = { sshPrivateKey: "[secret]" };

const hidden = (credentials: GitCredentials) => (isDeployKey(credentials) ? HIDDEN_DEPLOY_KEY : HIDDEN_CREDENTIALS);

/** Credentials a write keeps: the sealed ones stored already, or new ones in plaintext (to seal once the config is valid). */
export type CredentialsToKeep = { sealed: GitCredentials } | { plain: GitCredentials } | null;

/**
 * The git source a write stores, URL without credentials, and the credentials that go with it:
 * the ones given (`credentials`, or inside the URL), none when `credentials` is null, else the
 * stored ones, but only while the URL keeps their host (credentialScope): a URL pointed at
 * another host does not take them along (whoever may edit a service may not read its secrets).
 */
export function gitSourceToStore(stored: GitSource | null, next: Record<string, unknown>): { git: Record<string, unknown>; credentials: CredentialsToKeep } {
  const { credentials: given, ...rest } = next;
  const parsed = parseGitUrl(typeof next.url === "string" ? next.url : "");
  // Left as given for the schema to refuse, with its message.
  if (!parsed.ok || (given && parsed.value.credentials)) return { git: next, credentials: null };
  const git = { ...rest, url: parsed.value.url };
  if (given === null) return { git, credentials: null };
  if (given !== undefined) return { git, credentials: { plain: given as GitCredentials } };
  if (parsed.value.credentials) return { git, credentials: { plain: parsed.value.credentials } };
  const before = stored && parseGitUrl(stored.url);
  const scope = before?.ok ? credentialScope(before.value) : null;
  if (before?.ok && scope !== null && scope === credentialScope(parsed.value)) {
    if (stored!.credentials) return { git, credentials: { sealed: stored!.credentials } };
    // Stored before credentials were taken out of URLs: they are sealed now.
    if (before.value.credentials) return { git, credentials: { plain: before.value.credentials } };
  }
  return { git, credentials: null };
}

/** The source with its credentials as the schema checks them: new ones as given, stored ones as "[secret]" (sealed, they are longer). */
export function forValidation(git: Record<string, unknown>, credentials: CredentialsToKeep): Record<string, unknown> {
  if (!credentials) return git;
  return { ...git, credentials: "plain" in credentials ? credentials.plain : hidden(credentials.sealed) };
}

/**
 * A new deploy key's format, checked while it is plaintext (the schema sees it sealed later on,
 * and the engine checks it again): refused as the schema refuses, on its field (a ZodRealError,
 * the Error that parsing throws, which the API adapter reports as a refused input).
 */
export function checkNewCredentials(credentials: CredentialsToKeep): void {
  if (!credentials || !("plain" in credentials) || !isDeployKey(credentials.plain)) return;
  const problem = sshKeyProblem(credentials.plain.sshPrivateKey);
  if (problem) throw new ZodRealError([{ code: "custom", path: ["config", "git", "credentials", "sshPrivateKey"], message: problem, input: undefined }]);
}

/** The validated source as stored: new credentials sealed, stored ones as they were. */
export function sealedSource<G extends GitSource>(cipher: OrganizationCipher, git: G, credentials: CredentialsToKeep): G {
  const { credentials: _validated, ...rest } = git;
  if (!credentials) return rest as G;
  const sealed = "sealed" in credentials ? credentials.sealed : mapCredentials(credentials.plain, (value) => cipher.encrypt(value, CONTEXT));
  return { ...rest, credentials: sealed } as G;
}

/** The credentials a write keeps, in plaintext: to check the repository with them before it is saved. */
export function openCredentialsToKeep(cipher: OrganizationCipher, credentials: CredentialsToKeep): GitCredentials | null {
  if (!credentials) return null;
  return "plain" in credentials ? credentials.plain : mapCredentials(credentials.sealed, (value) => cipher.decrypt(value, CONTEXT));
}

/** The stored source's credentials in plaintext (from an older URL too), for a deployment's snapshot; the URL without them. */
export function openGitCredentials(cipher: OrganizationCipher, git: GitSource): GitSource {
  const parsed = parseGitUrl(git.url);
  if (git.credentials) return { ...git, credentials: mapCredentials(git.credentials, (value) => cipher.decrypt(value, CONTEXT)) };
  if (parsed.ok && parsed.value.credentials) return { ...git, url: parsed.value.url, credentials: parsed.value.credentials };
  return git;
}

/**
 * For answers and audit entries: the URL without credentials, the credentials as "[secret]".
 * Those of an older URL that the rules now refuse (plain http) are left out, so the answer
 * stays valid; deploying such a service says why it is refused.
 */
export function hideGitCredentials(git: GitSource): GitSource {
  const parsed = parseGitUrl(git.url);
  const { credentials, ...rest } = git;
  if (!parsed.ok) return rest;
  const { url, credentials: inUrl } = parsed.value;
  if (credentials) return { ...rest, url, credentials: hidden(credentials) };
  return inUrl && !credentialsProblem(parsed.value) ? { ...rest, url, credentials: HIDDEN_CREDENTIALS } : { ...rest, url };
}
