import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { isDeployKey, parseGitUrl, type GitCredentials, type ParsedGitUrl } from "../../engine/protocol/git-source";
import type { GitSource } from "../../engine/protocol/snapshot";
import { gitConfigArgs, gitEnv, withGitAuth } from "../../engine/protocol/git-command";
import { AppError } from "../errors";

/**
 * A service's repository is checked when the service is created or its git source changes
 * (issue 14), so that an unreachable repository or an unknown branch is refused then, with the
 * reason, rather than at its first deployment: `git ls-remote` against the URL, with the
 * credentials the service will have, bounded by a timeout. It also tells the repository's default
 * branch, which a service saved without a branch records.
 *
 * The control plane fetches a URL a DEVELOPER gave (a request to any host and port it reaches):
 * only the transports the protocol allows (engine/protocol/git-source.ts), git's own allow-list
 * reduced to the URL's own transport (no redirect to another scheme: https never falls back to
 * http, nor to a file), and no answer of the host is relayed beyond the reason a check failed.
 * A DEVELOPER can make an engine clone any URL already, and run code there; this adds a
 * "reachable or not" from the control plane's host. An installation that must not do even that,
 * or cannot reach its engines' git hosts, turns the check off (SLIPWAY_CHECK_REPOSITORIES=0).
 */
export type RepositoryCheckSettings = {
  /** Off (SLIPWAY_CHECK_REPOSITORIES=0): services are saved unchecked, their repositories are met at deploy time. */
  enabled: boolean;
  /** How long a host has to answer (SLIPWAY_GIT_CHECK_TIMEOUT_SECONDS); then the check fails, saying so. */
  timeoutMs: number;
  /** Where ssh remembers the host keys of repositories checked with a deploy key (the control plane's own). */
  sshKnownHostsFile: string;
  /** PATH and HOME git runs with; nothing else of the control plane's environment. */
  env: { PATH: string; HOME: string };
  /**
   * Whether a local repository (`file://`, a path) may be read on this host
   * (SLIPWAY_READ_LOCAL_REPOSITORIES): only where the control plane shares its host with the
   * engine that clones it (`npm start`). Elsewhere the path names an engine's host, and reading
   * the control plane's own would show any organization's ADMIN (who may allow local
   * repositories on a cluster of theirs) what git repositories this host holds.
   */
  readsLocalPaths: boolean;
};

/** Why a local repository was not read: see RepositoryCheckSettings.readsLocalPaths. */
export const LOCAL_PATHS_NOT_READ =
  "it is a repository on the engine's host, and this control plane does not read repositories on its own host (SLIPWAY_READ_LOCAL_REPOSITORIES=0)";

export type RepositoryCheck =
  | {
      checked: true;
      /** The branch the repository's HEAD names (null when the server does not say). */
      defaultBranch: string | null;
    }
  | { checked: false; reason: string };

/** Branches named in a refusal for an unknown branch; the rest are counted. */
const BRANCHES_SHOWN = 5;
/** ls-remote's output kept: a repository with a million refs does not fill the control plane's memory. */
const OUTPUT_MAX = 8 * 1024 * 1024;

/**
 * Checks that the repository answers, with `credentials` (plaintext), and that `ref`'s branch
 * exists in it; throws AppError INVALID saying why not. Returns what was learnt, or why the
 * repository was not checked: some are not the control plane's to see.
 */
export async function checkRepository(
  settings: RepositoryCheckSettings,
  git: Pick<GitSource, "url" | "ref">,
  credentials: GitCredentials | null,
): Promise<RepositoryCheck> {
  if (!settings.enabled) return { checked: false, reason: "this control plane does not check repositories (SLIPWAY_CHECK_REPOSITORIES=0)" };
  const parsed = parseGitUrl(git.url);
  // Refused by the schema before this is called.
  if (!parsed.ok) throw new AppError("INVALID", `config.git.url: ${parsed.message}`);
  const { url, transport } = parsed.value;
  if (parsed.value.local) {
    if (!settings.readsLocalPaths) return { checked: false, reason: LOCAL_PATHS_NOT_READ };
    // A local repository is a path on the engine's host, which need not be this one: checked only
    // when the path is here too (the control plane and the engine of `npm start` share a host).
    const where = localPath(url);
    if (!(await exists(where))) return { checked: false, reason: `${where} is on the engine's host, which the control plane does not see` };
  } else if (transport === "ssh" && !(credentials && isDeployKey(credentials))) {
    return { checked: false, reason: "an ssh repository without a deploy key is cloned with the engine's own ssh keys, which the control plane does not have" };
  }

  const listed = await withGitAuth(credentials, parsed.value.origin, settings.sshKnownHostsFile, (auth) =>
    lsRemote(settings, url, gitConfigArgs([transport]), gitEnv(settings.env, [transport], auth)),
  );
  if (listed.spawnError) {
    // The control plane's host, not the repository: not the user's to fix.
    throw new AppError("UNAVAILABLE", `could not run git to check the repository (${listed.spawnError.message}): install git on the control plane's host`, {
      cause: listed.spawnError,
    });
  }
  if (listed.timedOut) throw unreachable(url, `no answer within ${formatSeconds(settings.timeoutMs)}`);
  if (listed.code !== 0) throw unreachable(url, whyUnreachable(listed.stderr, parsed.value, credentials));

  const { defaultBranch, branches } = parseRefs(listed.stdout);
  const ref = git.ref;
  if (branches.length === 0) {
    throw new AppError(
      "INVALID",
      `${url} has no branch yet (an empty repository): push a first commit, or save the service with checkRepository: false (slipway service create --no-check) to deploy it once pushed`,
    );
  }
  if (ref && "branch" in ref && !branches.includes(ref.branch)) {
    const ordered = defaultBranch && branches.includes(defaultBranch) ? [defaultBranch, ...branches.filter((b) => b !== defaultBranch)] : branches;
    const more = ordered.length - BRANCHES_SHOWN;
    const list = `${ordered.slice(0, BRANCHES_SHOWN).join(", ")}${more > 0 ? ` and ${more} more` : ""}`;
    throw new AppError("INVALID", `config.git.ref.branch: branch "${ref.branch}" not found in ${url}; it has ${list}`);
  }
  return { checked: true, defaultBranch: defaultBranch && branches.includes(defaultBranch) ? defaultBranch : null };
}

function unreachable(url: string, why: string): AppError {
  return new AppError("INVALID", `config.git.url: repository ${url} is unreachable: ${why}`);
}

/** The path of a local repository (`file:///srv/app.git` or `/srv/app.git`). */
export function localPath(url: string): string {
  return url.startsWith("file://") ? fileURLToPath(url.replace(/^file:\/\/localhost\//, "file:///")) : url;
}

async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then(
    () => true,
    () => false,
  );
}

/** `ref: refs/heads/main\tHEAD`, `<sha>\tHEAD`, `<sha>\trefs/heads/<branch>` (https://git-scm.com/docs/git-ls-remote). */
export function parseRefs(output: string): { defaultBranch: string | null; branches: string[] } {
  let defaultBranch: string | null = null;
  const branches: string[] = [];
  for (const line of output.split("\n")) {
    const [left, name] = line.split("\t");
    if (name === "HEAD" && left?.startsWith("ref: refs/heads/")) defaultBranch = left.slice("ref: refs/heads/".length);
    else if (name?.startsWith("refs/heads/")) branches.push(name.slice("refs/heads/".length));
  }
  return { defaultBranch, branches };
}

export type GitRun = { code: number | null; timedOut: boolean; stdout: string; stderr: string; spawnError: Error | null };

/** `git ls-remote --symref <url> HEAD refs/heads/*`. */
function lsRemote(settings: RepositoryCheckSettings, url: string, config: string[], env: Record<string, string>): Promise<GitRun> {
  return runGit(settings, [...config, "ls-remote", "--symref", "--", url, "HEAD", "refs/heads/*"], env, settings.env.HOME);
}

/**
 * git in a process group of its own, killed whole (git and its remote helper or ssh) when the
 * timeout passes: a host that accepts the connection and never answers costs the API the
 * timeout, never a hung request.
 */
export function runGit(settings: RepositoryCheckSettings, argv: string[], env: Record<string, string>, cwd: string): Promise<GitRun> {
  return new Promise((resolve) => {
    const child = spawn("git", argv, {
      cwd,
      env: env as unknown as NodeJS.ProcessEnv,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    let spawnError: Error | null = null;
    const killGroup = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
      } catch {
        // Gone already.
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, settings.timeoutMs);
    child.stdout.on("data", (chunk: Buffer) => {
      if (stdout.length < OUTPUT_MAX) stdout += chunk.toString("utf8");
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString("utf8")).slice(-8192);
    });
    child.on("error", (error) => {
      spawnError = error;
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      // ssh or a remote helper left behind by git does not outlive the check.
      killGroup();
      resolve({ code, timedOut, stdout, stderr, spawnError });
    });
  });
}

/** The reason a user can act on, from what git and ssh said (their wording since git 2.20 and OpenSSH 7). */
export function whyUnreachable(stderr: string, parsed: ParsedGitUrl, credentials: GitCredentials | null): string {
  // Quoted URLs and paths are left out: a repository named tls-demo is not a TLS failure.
  const text = stderr.replace(/'[^'\n]*'/g, "''").toLowerCase();
  const host = hostOf(parsed);
  const has = (...patterns: RegExp[]) => patterns.some((pattern) => pattern.test(text));
  const redirected = /protocol "?([a-z0-9+.-]+)"? not supported or disabled/.exec(text);
  if (redirected) return `it redirects to another scheme (${redirected[1]}), which the check does not follow: give the URL it redirects to`;
  if (
    has(/could not resolve host/, /could not resolve hostname/, /name or service not known/, /temporary failure in name resolution/, /no address associated/)
  ) {
    return `host ${host} not found (DNS)`;
  }
  if (has(/connection refused/)) return `${host} refused the connection`;
  if (has(/failed to connect to/, /couldn't connect to server/, /could not connect to server/)) return `could not connect to ${host}`;
  if (has(/network is unreachable/, /no route to host/)) return `no route to ${host}`;
  if (has(/timed out/)) return `the connection to ${host} timed out`;
  if (has(/host key verification failed/, /remote host identification has changed/)) {
    return `${host}'s ssh host key is not the one the control plane recorded for it: if the host changed its key, remove its line from the control plane's known_hosts`;
  }
  if (has(/permission denied \(publickey/))
    return "authentication failed: the host refused the deploy key (is its public key added to the repository, with read access?)";
  if (has(/ssl/, /certificate/, /tls/)) return `TLS failed: ${lastLine(stderr)}`;
  if (has(/authentication failed/, /could not read username/, /could not read password/, /returned error: 401/)) {
    return credentials
      ? "authentication failed: the repository refused the credentials"
      : "authentication required: the repository is private (or does not exist); give a token (--git-token-stdin) or, for an ssh URL, a deploy key";
  }
  if (has(/returned error: 403/)) return "access denied (HTTP 403): the credentials do not give read access to it";
  if (has(/not found/, /does not appear to be a git repository/, /does not exist/, /returned error: 404/, /no such file or directory/)) {
    return "repository not found";
  }
  if (has(/not valid: is this a git repository/)) return "the server is not a git server at this URL";
  return `git ls-remote failed: ${lastLine(stderr) || "without a message"}`;
}

function hostOf(parsed: ParsedGitUrl): string {
  if (parsed.origin) return parsed.origin.replace(/^https?:\/\//, "");
  const rest = parsed.url.replace(/^[a-z]+:\/\//i, "");
  const authority = /^[a-z]+:\/\//i.test(parsed.url) ? rest.split("/")[0]! : rest.slice(0, rest.indexOf(":"));
  return authority.slice(authority.lastIndexOf("@") + 1);
}

function lastLine(text: string): string {
  const lines = text
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean);
  return (lines.at(-1) ?? "").slice(0, 300);
}

function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}
