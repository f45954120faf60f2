import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { type GitCredentials, type GitTokenCredentials, type GitTransport, isDeployKey } from "./git-source";

/**
 * How git runs wherever Slipway runs it on a user's input: the engine, to clone
 * (engine/runtime/shared/git.ts), and the control plane, to check a repository when a service
 * is saved (server/git/check-repository.ts). Pure argv and environment, no process: both ends
 * spawn git themselves. Not exported from the protocol's index: the dashboard has no use for it.
 */

/**
 * git's configuration, on the command line so that nothing else decides it: no hooks, no
 * credential helpers, no fsmonitor (each would run a program), and only the given transports,
 * which run no program beyond git's own (https, http, ssh, git; file where local repositories
 * are allowed). `ext::` and other remote helpers are refused by the allow-list, and so are
 * redirects to a transport not in it (git gives curl the same list for redirects).
 * https://git-scm.com/docs/git-config#Documentation/git-config.txt-protocolallow
 */
export function gitConfigArgs(transports: readonly GitTransport[]): string[] {
  return [
    "core.hooksPath=/dev/null",
    "credential.helper=",
    "core.fsmonitor=false",
    "core.askPass=",
    "protocol.allow=never",
    ...transports.map((transport) => `protocol.${transport}.allow=always`),
    "protocol.ext.allow=never",
    `protocol.file.allow=${transports.includes("file") ? "always" : "never"}`,
  ].flatMap((setting) => ["-c", setting]);
}

/**
 * How git reaches a private repository: a token as an `Authorization` header scoped to the
 * repository's origin, or a deploy key in a file of its own (0600, in a private directory the
 * caller removes after git ran) with a known_hosts file of the caller's.
 */
export type GitAuth = { kind: "token"; origin: string; credentials: GitTokenCredentials } | { kind: "deploy key"; keyFile: string; knownHostsFile: string };

/**
 * git's environment: no system or user configuration (`url.*.insteadOf` could point a URL
 * elsewhere, `core.sshCommand` run anything), never a prompt, ssh in batch mode, and the same
 * transport allow-list as the configuration (git's `GIT_ALLOW_PROTOCOL` wins over both).
 * Credentials go in as configuration from the environment, scoped to the repository's origin:
 * never in argv (which `ps` shows) or the URL (which git writes to the checkout's config).
 */
export function gitEnv(base: Record<string, string>, transports: readonly GitTransport[], auth: GitAuth | null): Record<string, string> {
  const env: Record<string, string> = {
    ...base,
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: "/dev/null",
    GIT_TERMINAL_PROMPT: "0",
    GIT_ASKPASS: "",
    SSH_ASKPASS: "",
    GIT_SSH_COMMAND: sshCommand(auth?.kind === "deploy key" ? auth : null),
    GIT_ALLOW_PROTOCOL: transports.join(":"),
  };
  if (auth?.kind === "token") {
    const basic = Buffer.from(`${auth.credentials.username}:${auth.credentials.password}`).toString("base64");
    Object.assign(env, {
      GIT_CONFIG_COUNT: "1",
      GIT_CONFIG_KEY_0: `http.${auth.origin}/.extraHeader`,
      GIT_CONFIG_VALUE_0: `Authorization: Basic ${basic}`,
    });
  }
  return env;
}

/**
 * The ssh git runs (git hands GIT_SSH_COMMAND to a shell, hence the quoted paths). Always in
 * batch mode: no prompt for a password or an unknown host. With a deploy key: that key only
 * (not the agent's nor the host user's), and host keys remembered in the caller's own
 * known_hosts file, a new host accepted on first use and a changed key refused
 * (https://man.openbsd.org/ssh_config#StrictHostKeyChecking).
 */
export function sshCommand(deployKey: { keyFile: string; knownHostsFile: string } | null): string {
  if (!deployKey) return "ssh -o BatchMode=yes";
  return [
    "ssh",
    "-o BatchMode=yes",
    "-o IdentitiesOnly=yes",
    option("IdentityFile", deployKey.keyFile),
    "-o StrictHostKeyChecking=accept-new",
    option("UserKnownHostsFile", deployKey.knownHostsFile),
  ].join(" ");
}

/**
 * `-o Name="path"`, quoted for the shell (single quotes) and for ssh's option parser (double
 * quotes: a path may hold spaces). ssh expands `%` tokens and `~` in these paths: the caller's
 * own files never need them, and a path with one is refused rather than read as another.
 */
function option(name: string, file: string): string {
  if (!file.startsWith("/") || /["'%\\\p{Cc}]/u.test(file))
    throw new Error(`${name} ${JSON.stringify(file)}: expected an absolute path without quotes, % or \\`);
  return `-o '${name}="${file}"'`;
}

/** A deploy key as the file ssh reads: LF line ends and a final newline (ssh refuses the key without them). */
export function deployKeyFileContent(key: string): string {
  return `${key.replace(/\r\n/g, "\n").trim()}\n`;
}

/**
 * Runs `use` with the credentials as git takes them: a token for its origin; a deploy key
 * written to a file (0600) in a private directory (0700) of its own, removed when `use` ends
 * whatever its outcome, so the key is on disk only while git runs; host keys go to
 * `knownHostsFile` (its directory is made private when created).
 */
export async function withGitAuth<T>(
  credentials: GitCredentials | null,
  origin: string | null,
  knownHostsFile: string | undefined,
  use: (auth: GitAuth | null) => Promise<T>,
): Promise<T> {
  if (!credentials) return use(null);
  if (!isDeployKey(credentials)) return use(origin ? { kind: "token", origin, credentials } : null);
  if (!knownHostsFile) throw new Error("a deploy key needs a known_hosts file, and none was given");
  await fs.mkdir(path.dirname(knownHostsFile), { recursive: true, mode: 0o700 });
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-deploy-key-"));
  try {
    await fs.chmod(dir, 0o700);
    const keyFile = path.join(dir, "key");
    await fs.writeFile(keyFile, deployKeyFileContent(credentials.sshPrivateKey), { mode: 0o600, flag: "wx" });
    return await use({ kind: "deploy key", keyFile, knownHostsFile });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
