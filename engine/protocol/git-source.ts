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

/** HTTP basic credentials of a repository (a token is the password, or the username alone). */
export type GitCredentials = { username: string; password: string };

export type ParsedGitUrl = {
  transport: GitTransport;
  /** A repository on the engine's host (`file://` or an absolute path): allowed only where an ADMIN allowed local repositories. */
  local: boolean;
  /** The URL without credentials: what is stored, shown, logged and given to git. */
  url: string;
  /** The `user:token@` of an http(s) URL, taken out of it. */
  credentials: GitCredentials | null;
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
    if (user !== null && user.includes(":")) return refused("ssh URLs take no password: the engine's ssh keys are used");
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
    if (userinfo.includes(":")) return refused("ssh URLs take no password: the engine's ssh keys are used");
    if (userinfo === "" || userinfo.startsWith("-")) return refused("the ssh user must not be empty or start with '-'");
    return { ok: true, value: { transport, local: false, url: text, credentials: null, origin: null } };
  }
  // http(s): the credentials come out of the URL, to be kept as a secret.
  const split = userinfo.indexOf(":");
  let credentials: GitCredentials;
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
 * Where credentials may go: over https, or plain http to this host (a git server on the
 * loopback interface). Anywhere else they would cross the network in clear.
 */
export function credentialsProblem(parsed: ParsedGitUrl): string | null {
  if (parsed.transport === "https") return null;
  if (parsed.transport === "http") {
    const host = parsed.origin!.slice("http://".length).replace(/:\d*$/, "");
    return LOOPBACK.has(host) ? null : "credentials are sent only over https: use an https URL";
  }
  return `credentials are for https URLs; ${parsed.transport === "ssh" ? "ssh uses the engine's ssh keys" : `a ${parsed.transport} URL takes none`}`;
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
