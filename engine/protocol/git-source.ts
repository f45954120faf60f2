/**
 * Git input is data, never options or local paths (issue 13): the rules for a service's git
 * URL, branch and root directory. One source for both ends: the control plane refuses bad input
 * when a service is saved, and the engine checks again before it runs git, since it does not
 * trust the control plane with its host. Each check returns the message a user sees.
 *
 * Forms git takes (https://git-scm.com/docs/git-clone#_git_urls): `https://`, `http://`,
 * `ssh://`, `git://`, scp-like `user@host:path`, and local repositories (`file://` and absolute
 * paths). Refused: `<transport>::<address>` (git runs `git-remote-<transport>`, `ext::` runs any
 * command), other schemes (remote helpers too), relative paths, and anything git could read as
 * an option.
 */

export type GitTransport = "https" | "http" | "ssh" | "git" | "file";

/** HTTP basic credentials of an http(s) repository (a token is the password, or the username alone). */
export type GitTokenCredentials = { username: string; password: string };
/** A deploy key of an ssh repository: a private key (OpenSSH or PEM) without a passphrase. */
export type GitDeployKey = { sshPrivateKey: string };
/** What a private repository is reached with: a token over https, or a deploy key over ssh. */
export type GitCredentials = GitTokenCredentials | GitDeployKey;

export function isDeployKey(credentials: GitCredentials): credentials is GitDeployKey {
  return "sshPrivateKey" in credentials;
}

/** The credentials with each secret value passed through `change` (to seal or open them). */
export function mapCredentials<C extends GitCredentials>(credentials: C, change: (value: string) => string): C {
  return isDeployKey(credentials)
    ? ({ sshPrivateKey: change(credentials.sshPrivateKey) } as C)
    : ({ username: change(credentials.username), password: change(credentials.password) } as C);
}

export type ParsedGitUrl = {
  transport: GitTransport;
  /** A repository on the engine's host (`file://` or an absolute path): allowed only where an ADMIN allowed local repositories. */
  local: boolean;
  /** The URL without credentials: what is stored, shown, logged and given to git. */
  url: string;
  /** The `user:token@` of an http(s) URL, taken out of it. */
  credentials: GitTokenCredentials | null;
  /** `https://host[:port]` of an http(s) URL: the only place its credentials are sent. */
  origin: string | null;
};

export type Checked<T> = { ok: true; value: T } | { ok: false; message: string };

const refused = (message: string): { ok: false; message: string } => ({ ok: false, message });

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;
/** `<transport>::<address>`: git hands it to `git-remote-<transport>`, and `ext::` runs a shell command. */
const REMOTE_HELPER = /^([A-Za-z][A-Za-z0-9+.-]*)::/;
const HOST = /^([A-Za-z0-9](?:[A-Za-z0-9._~%-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])$/;
const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);

const SSH_NO_PASSWORD = "ssh URLs take no password: give a deploy key (sshPrivateKey), or the engine's own ssh keys are used";

/** Where to find local repositories in messages, so a refusal says what would allow it. */
const LOCAL_HINT = "file:// only on a cluster whose ADMIN allowed local repositories";

export function parseGitUrl(text: string): Checked<ParsedGitUrl> {
  if (text.length === 0) return refused("enter a git URL");
  const helper = REMOTE_HELPER.exec(text);
  if (helper) return refused(`"${helper[1]}::" URLs are refused: git runs a command for them; use an https, ssh or git URL`);
  if (text.startsWith("-")) return refused("must not start with '-': git would read it as an option");
  const parsed = classify(text);
  if (parsed.ok && (/\s/.test(text) || hasControlCharacter(text))) return refused("must not contain spaces or control characters");
  return parsed;
}

function classify(text: string): Checked<ParsedGitUrl> {
  const scheme = SCHEME.exec(text);
  if (scheme) return parseSchemeUrl(text, scheme[1]!.toLowerCase());

  // scp-like `[user@]host:path`: a colon before the first slash (git's own rule).
  const colon = text.indexOf(":");
  const slash = text.indexOf("/");
  if (colon > 0 && (slash < 0 || colon < slash)) {
    const authority = text.slice(0, colon);
    const path = text.slice(colon + 1);
    const at = authority.lastIndexOf("@");
    const user = at >= 0 ? authority.slice(0, at) : null;
    const host = authority.slice(at + 1);
    if (user !== null && user.includes(":")) return refused(SSH_NO_PASSWORD);
    if (user !== null && (user === "" || user.startsWith("-"))) return refused("the ssh user must not be empty or start with '-'");
    const hostProblem = checkHost(host);
    if (hostProblem) return refused(hostProblem);
    if (path === "" || path.startsWith("-")) return refused("the repository path after ':' must not be empty or start with '-'");
    return { ok: true, value: { transport: "ssh", local: false, url: text, credentials: null, origin: null } };
  }

  if (text.startsWith("/")) return { ok: true, value: { transport: "file", local: true, url: text, credentials: null, origin: null } };
  return refused(`expected an https, ssh or git URL (${LOCAL_HINT})`);
}

/** What is wrong with a git URL, or null. */
export function gitUrlProblem(text: string): string | null {
  const parsed = parseGitUrl(text);
  return parsed.ok ? null : parsed.message;
}

function parseSchemeUrl(text: string, scheme: string): Checked<ParsedGitUrl> {
  const rest = text.slice(scheme.length + 3);
  const pathStart = rest.indexOf("/");
  const authority = pathStart < 0 ? rest : rest.slice(0, pathStart);
  const path = pathStart < 0 ? "" : rest.slice(pathStart);
  const at = authority.lastIndexOf("@");
  const userinfo = at >= 0 ? authority.slice(0, at) : null;
  const hostPort = authority.slice(at + 1);

  if (scheme === "file") {
    if (userinfo !== null || (hostPort !== "" && hostPort !== "localhost"))
      return refused("a file:// URL names a path on the engine's host: file:///path/to/repo");
    if (path === "" || path === "/") return refused("the URL names no repository");
    return { ok: true, value: { transport: "file", local: true, url: text, credentials: null, origin: null } };
  }
  if (scheme !== "https" && scheme !== "http" && scheme !== "ssh" && scheme !== "git") {
    return refused(`"${scheme}://" URLs are refused: use an https, ssh or git URL (${LOCAL_HINT})`);
  }

  // An IPv6 address is bracketed and full of colons: the port's colon comes after the bracket.
  const portColon = hostPort.lastIndexOf(":");
  const hasPort = portColon >= 0 && portColon > hostPort.lastIndexOf("]");
  const host = hasPort ? hostPort.slice(0, portColon) : hostPort;
  const hostProblem = checkHost(host);
  if (hostProblem) return refused(hostProblem);
  if (hasPort && !/^\d{1,5}$/.test(hostPort.slice(portColon + 1))) return refused("the port must be a number");
  if (path === "" || path === "/") return refused("the URL names no repository");
  const transport: GitTransport = scheme;

  if (userinfo === null) return { ok: true, value: { transport, local: false, url: text, credentials: null, origin: originOf(transport, hostPort) } };
  if (transport === "git") return refused("git:// URLs take no user or password");
  if (transport === "ssh") {
    if (userinfo.includes(":")) return refused(SSH_NO_PASSWORD);
    if (userinfo === "" || userinfo.startsWith("-")) return refused("the ssh user must not be empty or start with '-'");
    return { ok: true, value: { transport, local: false, url: text, credentials: null, origin: null } };
  }
  // http(s): the credentials come out of the URL, to be kept as a secret.
  const split = userinfo.indexOf(":");
  let credentials: GitTokenCredentials;
  try {
    credentials = {
      username: decodeURIComponent(split < 0 ? userinfo : userinfo.slice(0, split)),
      password: split < 0 ? "" : decodeURIComponent(userinfo.slice(split + 1)),
    };
  } catch {
    return refused("the credentials in the URL are not valid percent-encoding");
  }
  const url = `${scheme}://${hostPort}${path}`;
  const origin = originOf(transport, hostPort);
  if (credentials.username === "") {
    if (credentials.password !== "") return refused("the credentials in the URL have a password but no user");
    return { ok: true, value: { transport, local: false, url, credentials: null, origin } };
  }
  return { ok: true, value: { transport, local: false, url, credentials, origin } };
}

function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

function checkHost(host: string): string | null {
  if (host === "") return "the URL has no host";
  if (host.startsWith("-")) return "the host must not start with '-': git would read it as an option";
  if (!HOST.test(host)) return `"${host}" is not a host name`;
  return null;
}

function originOf(transport: GitTransport, hostPort: string): string | null {
  return transport === "https" || transport === "http" ? `${transport}://${hostPort.toLowerCase()}` : null;
}

/**
 * Where credentials may go. A token: over https, or plain http to this host (a git server on the
 * loopback interface); anywhere else it would cross the network in clear. A deploy key: over ssh
 * only (ssh never sends the key, only proves it holds it).
 */
export function credentialsProblem(parsed: ParsedGitUrl, kind: "token" | "deploy key" = "token"): string | null {
  if (kind === "deploy key") return parsed.transport === "ssh" ? null : "a deploy key is for ssh URLs (ssh://… or git@host:path); an https URL takes a token";
  if (parsed.transport === "https") return null;
  if (parsed.transport === "http") {
    const host = parsed.origin!.slice("http://".length).replace(/:\d*$/, "");
    return LOOPBACK.has(host) ? null : "credentials are sent only over https: use an https URL";
  }
  return parsed.transport === "ssh"
    ? "a token is for https URLs; an ssh URL takes a deploy key (sshPrivateKey), or the engine's own ssh keys are used"
    : `credentials are for https and ssh URLs; a ${parsed.transport} URL takes none`;
}

/**
 * Where a repository's stored credentials may follow it when its URL changes: the origin of an
 * http(s) URL, `ssh://host[:port]` of an ssh one. Another host does not get them.
 */
export function credentialScope(parsed: ParsedGitUrl): string | null {
  if (parsed.origin !== null) return parsed.origin;
  if (parsed.transport !== "ssh") return null;
  const scheme = SCHEME.exec(parsed.url);
  const authority = scheme ? parsed.url.slice(scheme[0].length).split("/")[0]! : parsed.url.slice(0, parsed.url.indexOf(":"));
  return `ssh://${authority.slice(authority.lastIndexOf("@") + 1).toLowerCase()}`;
}

/** The largest deploy key taken: an RSA key of 16384 bits is under 13 000 characters. */
export const SSH_KEY_MAX = 16_384;

/**
 * What is wrong with a deploy key, or null: it must be a private key in a PEM or OpenSSH file
 * (what `ssh-keygen` writes), without a passphrase, since nobody is there to type one.
 */
export function sshKeyProblem(key: string): string | null {
  const text = key.trim();
  if (text.length === 0) return "enter the deploy key's private key";
  if (text.length > SSH_KEY_MAX) return `at most ${SSH_KEY_MAX} characters`;
  if (/^(ssh-|ecdsa-|sk-)/.test(text)) return "this is a public key: give the private key (the file without .pub) and add the public one to the repository";
  const pem = /^-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----\r?\n([\s\S]+?)\r?\n-----END \1PRIVATE KEY-----$/.exec(text);
  if (!pem) return "expected a private key file as ssh-keygen writes it (-----BEGIN OPENSSH PRIVATE KEY----- …)";
  const type = pem[1]!;
  const body = pem[2]!;
  const passphrase = "the key has a passphrase, which nobody can type at deploy time: remove it (ssh-keygen -p -N '' -f <file>) or make a key without one";
  if (type === "ENCRYPTED " || /^Proc-Type:.*ENCRYPTED/m.test(body)) return passphrase;
  if (type === "OPENSSH ") {
    // openssh-key-v1: the magic, then the cipher's name ("none" when there is no passphrase).
    let bytes: string;
    try {
      bytes = atob(body.replace(/\s+/g, ""));
    } catch {
      return "the key is not valid base64";
    }
    const magic = "openssh-key-v1\0";
    if (!bytes.startsWith(magic) || bytes.length < magic.length + 4) return "the key is not an OpenSSH private key";
    const at = magic.length;
    const length = ((bytes.charCodeAt(at) << 24) | (bytes.charCodeAt(at + 1) << 16) | (bytes.charCodeAt(at + 2) << 8) | bytes.charCodeAt(at + 3)) >>> 0;
    if (bytes.slice(at + 4, at + 4 + length) !== "none") return passphrase;
  }
  return null;
}

/** A branch name git takes as nothing but a branch (https://git-scm.com/docs/git-check-ref-format), within the repository. */
export function branchProblem(branch: string): string | null {
  if (branch.length === 0) return "enter a branch";
  if (branch.length > 250) return "at most 250 characters";
  if (branch.startsWith("-")) return "must not start with '-': git would read it as an option";
  if (branch.includes("..")) return "must not contain '..'";
  if (/[\s~^:?*[\\]/.test(branch) || hasControlCharacter(branch)) return "must not contain spaces or any of ~ ^ : ? * [ \\";
  if (branch === "@" || branch.includes("@{")) return "must not be '@' or contain '@{'";
  if (branch.startsWith("/") || branch.endsWith("/") || branch.includes("//")) return "must not start or end with '/' or contain '//'";
  if (branch.split("/").some((part) => part.startsWith(".") || part.endsWith(".lock"))) return "no part may start with '.' or end with '.lock'";
  if (branch.endsWith(".")) return "must not end with '.'";
  return null;
}

/** A directory inside the repository (the service's root, a Docker build context or Dockerfile): relative, and never above it. */
export function repositoryPathProblem(value: string): string | null {
  if (value.length > 500) return "at most 500 characters";
  if (value.startsWith("-")) return "must not start with '-'";
  if (value.includes("..")) return "must not contain '..': the path must stay inside the repository";
  if (value.startsWith("/") || value.startsWith("~") || value.includes("\\")) return "must be a path inside the repository, relative to its root";
  if (hasControlCharacter(value)) return "must not contain control characters";
  return null;
}
