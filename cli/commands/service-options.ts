import { InvalidArgumentError } from "commander";
import { parse as parseWords } from "shell-quote";
import type { Context } from "../context";
import { usageError } from "../errors";
import { oneOf, readSecretFile, readSecretFromStdin } from "../secret-input";

/** Option parsers and secret inputs shared by `service create` and `service update`. */

export function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidArgumentError("expected a port number (1-65535)");
  return port;
}

/** `nginx:1.27` or `ghcr.io/acme/api` (tag latest). */
export function parseImage(text: string) {
  const at = text.lastIndexOf(":");
  return at > text.lastIndexOf("/") ? { name: text.slice(0, at), tag: text.slice(at + 1) } : { name: text };
}

export function parseCount(max: number) {
  return (value: string): number => {
    const count = Number(value);
    if (!Number.isInteger(count) || count < 0 || count > max) throw new InvalidArgumentError(`expected a whole number from 0 to ${max}`);
    return count;
  };
}

/** `--sleep-after`: whole minutes, or `never` (0, which the API stores as never sleeping). */
export function parseSleepAfter(value: string): number {
  if (value.trim().toLowerCase() === "never") return 0;
  const minutes = Number(value);
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > 43_200) throw new InvalidArgumentError("expected whole minutes from 1 to 43200, or never");
  return minutes;
}

/** A positive number, fractions allowed (`--cpus 0.5`); the API checks its range. */
export function parseNumber(value: string): number {
  const number = Number(value);
  if (value.trim() === "" || !Number.isFinite(number) || number <= 0) throw new InvalidArgumentError("expected a positive number");
  return number;
}

const lifecycleEvents = ["start", "stop", "delete"];
export function parseEvents(value: string): string[] {
  const events = value
    .split(",")
    .map((event) => event.trim())
    .filter(Boolean);
  const unknown = events.find((event) => !lifecycleEvents.includes(event));
  if (unknown || events.length === 0) throw new InvalidArgumentError(`expected a comma-separated list of ${lifecycleEvents.join(", ")}`);
  return events;
}

export function onOff(value: string): boolean {
  if (value === "on") return true;
  if (value === "off") return false;
  throw new InvalidArgumentError('expected "on" or "off"');
}

/**
 * A CONTAINER's command as the argv the container runtime executes (no shell runs it): split
 * into words as a POSIX shell splits them, quotes and backslashes included (shell-quote), and
 * refused when it needs a shell to mean what it says (a pipe, a redirection, `$VAR`, a glob):
 * `sh -c '…'` is the way to ask for one. A usage error rather than commander's own: it is called
 * once the service's kind is known, in the command's action.
 */
export function commandArgv(text: string): string[] {
  // A variable comes back as this marker (shell-quote copies it): a container's runtime would pass `$X` on as it is.
  const words = parseWords<{ variable: true }>(text, () => ({ variable: true }));
  const needsShell = words.find((word) => typeof word !== "string");
  if (needsShell) {
    const what =
      "variable" in needsShell ? "a $variable" : "op" in needsShell ? `"${needsShell.op === "glob" ? needsShell.pattern : needsShell.op}"` : "a comment";
    throw usageError(`${what} needs a shell, and a container's command runs without one: write sh -c '…'`);
  }
  if (words.length === 0) throw usageError("a container's command cannot be empty");
  return words as string[];
}

export type GitCredentialOptions = { git?: string; gitTokenStdin?: boolean; gitUser?: string; gitSshKeyFile?: string };

/**
 * A repository's credentials, from standard input (a token) or a file (a deploy key), never an
 * argument (secret-input.ts); undefined when none is given.
 */
export async function readGitCredentials(
  ctx: Context,
  options: GitCredentialOptions,
): Promise<{ username: string; password: string } | { sshPrivateKey: string } | undefined> {
  if (options.gitUser && !options.gitTokenStdin) throw usageError("--git-user goes with --git-token-stdin");
  oneOf({ "--git-token-stdin": options.gitTokenStdin, "--git-ssh-key-file": options.gitSshKeyFile });
  if (options.gitTokenStdin)
    return { username: options.gitUser ?? "x-access-token", password: (await readSecretFromStdin(ctx, "the repository's token")).trim() };
  if (options.gitSshKeyFile) return { sshPrivateKey: await readSecretFile(ctx, options.gitSshKeyFile, "the deploy key") };
  if (options.git && /^https?:\/\/[^/@]*@/i.test(options.git)) {
    ctx.note("note: the token in this URL was visible to other users of this host (ps) while the command ran; pipe it to --git-token-stdin instead");
  }
  return undefined;
}
